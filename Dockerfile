# One image for the producer and the workers; each compose service picks its command.

# ---- build: compile TypeScript and better-sqlite3 (from source: python3, make, g++) --------------
FROM node:24-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: compiled JavaScript and production modules only, as a non-root user ---------------
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    BACKUP_DIR=/data/backups \
    DATABASE_PATH=/data/db/workstation.db \
    PORT=3000
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Named volumes take the ownership and modes of these directories on first use.
RUN mkdir -p /data/backups /data/db \
 && chown -R node:node /data \
 && chmod 0700 /data/backups
USER node
EXPOSE 3000
# The producer by default; workers run `node dist/worker/index.js`.
CMD ["node", "dist/producer/server.js"]
