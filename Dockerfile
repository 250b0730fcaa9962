# syntax=docker/dockerfile:1
#
# The outbox daemon as a container: a static binary on a distroless base
# (no shell, no package manager, no curl), running as an unprivileged user,
# its queue on a volume.
#
#   docker build -t outbox \
#     --build-arg VERSION="$(git describe --tags --always)" \
#     --build-arg COMMIT="$(git rev-parse HEAD)" .
#   docker run -p 8025:8025 -p 2525:2525 -v outbox-data:/var/lib/outbox \
#     -v "$PWD/secrets:/run/secrets:ro" \
#     -e OUTBOX_API_TOKEN_FILE=/run/secrets/api-tokens \
#     -e OUTBOX_SMTP_USER_FILE=/run/secrets/smtp-users \
#     -e OUTBOX_RELAY_FILE=/run/secrets/relay.url outbox
#
# The listeners bind every interface here, so outbox insists on an API
# token and an SMTP user (see the README, "Running in a container").

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=unknown
# .git is not in the build context (.dockerignore): the version and commit
# come from the build arguments instead of the VCS stamp.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.stampedVersion=${VERSION} -X main.stampedCommit=${COMMIT}" \
      -o /out/outbox ./cmd/outbox \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/outbox /usr/local/bin/outbox
COPY --from=build --chown=65532:65532 /out/data /var/lib/outbox
ENV OUTBOX_DB=sqlite:/var/lib/outbox/outbox.db \
    OUTBOX_HTTP=0.0.0.0:8025 \
    OUTBOX_SMTP=0.0.0.0:2525
WORKDIR /var/lib/outbox
VOLUME ["/var/lib/outbox"]
EXPOSE 8025 2525
USER 65532:65532
# outbox healthcheck asks GET /readyz on the port OUTBOX_HTTP names.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/outbox", "healthcheck", "--timeout", "8s"]
# SIGTERM drains: listeners first, then deliveries under way (up to 30 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/outbox"]
CMD ["serve"]
