/** Time as Redis tells it. */
/** Redis's own clock in ms: the one clock every host of a cluster shares. */
export async function redisTimeMs(redis: { time(): Promise<Array<string | number>> }): Promise<number> {
  const [sec, usec] = await redis.time();
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}
