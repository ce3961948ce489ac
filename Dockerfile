# kubeconfig-rotator: one image, one entrypoint with subcommands (sidecar, approver, bootstrap, status).
# Multi-stage: the build stage has the dev dependencies (TypeScript); the final stage only the production
# dependencies and the compiled JavaScript, runs as a non-root user, and writes nothing outside the volumes
# it is given, so it works with readOnlyRootFilesystem. test/integration/image.test.ts rebuilds the final
# stage's contents without Docker and runs them.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Install scripts are off: the only one is the `node` dev dependency's, and this image has Node 24 already.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# The node image's unprivileged user; charts set runAsNonRoot and the same UID.
USER 1000:1000
# --optimize-for-size: a smaller, more eagerly collected heap. The approver holding 10,000 CSRs needs about
# half the memory with it (bench/RESULTS.md); NODE_OPTIONS cannot carry this flag, so it is here. The sidecar
# idles at 91 MiB with it (10 targets); --max-semi-space-size=1 saved nothing there, --lite-mode 15 MiB at a
# cost not established (docs/sidecar.md), and the approver shares this line and needs the optimizing compiler.
ENTRYPOINT ["node", "--optimize-for-size", "/app/dist/cli.js"]
CMD ["--help"]
