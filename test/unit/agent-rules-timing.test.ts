/**
 * The agent's rules that depend on when an observation was taken (simulator seeds 205
 * and 8351): reply ages aged by the time since the observation, and the promotion an
 * observation must name when a promote job overtook it.
 */
import { describe, expect, it } from 'vitest';
import { promotingAtPublish, standbysRepliedLately } from '../../src/core/agent-rules.js';
import { selfFenceCapMs } from '../../src/core/settings.js';

describe('standbysRepliedLately ages the reply ages', () => {
  const standbys = [{ state: 'streaming', replyAgeMs: 1_500 }];
  it('counts a standby that replied within fenceAfterMs of when the observation was taken', () => {
    expect(standbysRepliedLately(standbys, 2_000)).toBe(1);
    expect(standbysRepliedLately(standbys, 2_000, 499)).toBe(1);
  });
  it('not once the time since the observation makes its reply older than fenceAfterMs (seed 8351)', () => {
    expect(standbysRepliedLately(standbys, 2_000, 500)).toBe(0);
    expect(standbysRepliedLately(standbys, 2_000, 2_000)).toBe(0);
  });
  it('a negative time since (a clock step) ages nothing; an unknown reply age counts', () => {
    expect(standbysRepliedLately(standbys, 2_000, -10_000)).toBe(1);
    expect(standbysRepliedLately([{ state: 'streaming', replyAgeMs: null }], 2_000, 60_000)).toBe(1);
  });
});

describe('promotingAtPublish', () => {
  it('names the promote job running', () => {
    expect(promotingAtPublish(100, 'fo-1', null)).toBe('fo-1');
  });
  it('names a promotion begun since the observation began, even if it is over (seed 205)', () => {
    expect(promotingAtPublish(100, null, { operationId: 'fo-2', at: 100 })).toBe('fo-2');
    expect(promotingAtPublish(100, null, { operationId: 'fo-2', at: 1_100 })).toBe('fo-2');
  });
  it('nothing for a promotion that ended before the observation began', () => {
    expect(promotingAtPublish(100, null, { operationId: 'fo-2', at: 99 })).toBeNull();
    expect(promotingAtPublish(100, null, null)).toBeNull();
  });
});

describe('selfFenceCapMs', () => {
  it('is twice fenceAfterMs: the agent fences by then, whatever its standbys do', () => {
    expect(selfFenceCapMs(4_000)).toBe(8_000);
  });
});
