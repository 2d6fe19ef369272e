# syntax=docker/dockerfile:1
# lbp-imaging-cds: build with the dev toolchain, run on a slim Node 22 LTS image without dev dependencies.

FROM node:22-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 (the embedded store) compiles from source: no prebuilt binary is downloaded.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
ENV npm_config_build_from_source=true
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    RULES_DIR=/app/rules \
    DATA_DIR=/app/data
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
COPY --chown=node:node cds-hooks ./cds-hooks
COPY --chown=node:node playground ./playground
# The fixture patients feed the rules playground (/playground) for guideline teams.
COPY --chown=node:node fixtures/scenarios ./fixtures/scenarios
# Guideline teams can mount their own rules over this folder (-v ./my-rules:/app/rules:ro).
COPY --chown=node:node rules ./rules
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
VOLUME ["/app/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"]
# Same as `npm start`, without npm as PID 1 so signals reach the service.
CMD ["node", "dist/server.js"]
