# The mailqueue image of deploy/kubernetes: one binary, every role
# (`mailqueue serve --role api|worker`), plus the PostgreSQL and Redis
# client tools that the backup commands call.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mailqueue

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-client redis-tools gnupg \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/mailqueue /usr/local/bin/mailqueue
USER nobody
EXPOSE 3000
ENTRYPOINT ["mailqueue"]
CMD ["serve"]
