# switchyard: one image for the agent, the coordinator and the CLI.
#   docker build -t switchyard .
#   docker run --rm switchyard check --config /etc/switchyard/coordinator.yaml
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY agent ./agent
COPY coordinator ./coordinator
COPY scripts ./scripts
COPY bench ./bench
# npm run build: tsc, and the Lua scripts copied next to the compiled src/bus (loaded at start)
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
# the PostgreSQL client tools the agent runs (pg_rewind, pg_basebackup, pg_ctl) for managed nodes
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 tini && rm -rf /var/lib/apt/lists/*
ENV PG_BIN=/usr/lib/postgresql/15/bin NODE_ENV=production
WORKDIR /opt/switchyard
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
USER node
EXPOSE 7400
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/switchyard/dist/src/cli/main.js"]
CMD ["--help"]
