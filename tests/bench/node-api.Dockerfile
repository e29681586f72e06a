# The multi-stage Dockerfile equivalent of specs/examples/node-api/ocib.json,
# for `buildah bud` in tests/bench/node-api (context: specs/examples/node-api).
#   buildah bud --layers --format docker --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#       --build-arg BASE=localhost/ocib/node:20 -f tests/bench/node-api.Dockerfile specs/examples/node-api
# BASE is the Node base image that tests/bases/make-node-base writes as an OCI
# layout (pulled into buildah's store with `buildah pull oci:DIR:20`).
# --format docker: HEALTHCHECK is a Docker-format field.
ARG BASE=localhost/ocib/node:20

FROM ${BASE} AS prod-deps
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false NPM_CONFIG_LOGS_MAX=0
COPY package.json package-lock.json /app/
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=ca,target=/etc/ssl/certs/ca-certificates.crt \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm ci --omit=dev

FROM ${BASE} AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false NPM_CONFIG_LOGS_MAX=0
COPY package.json package-lock.json /app/
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=ca,target=/etc/ssl/certs/ca-certificates.crt \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm ci
COPY src /app/src/
COPY tsconfig.json /app/
RUN npm run build

FROM ${BASE} AS runtime
COPY --from=prod-deps /app/node_modules /app/node_modules/
COPY --from=build /app/dist /app/dist/
COPY package.json /app/
USER node
WORKDIR /app
ENV NODE_ENV=production
EXPOSE 3000/tcp
HEALTHCHECK --interval=30s --timeout=3s CMD ["node", "dist/healthcheck.js"]
CMD ["node", "dist/server.js"]
