#!/usr/bin/env bash
# Start Redis, PostgreSQL and RabbitMQ on loopback when they are not answering (they normally run already).
set -u
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "==> starting redis on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || echo "warning: could not start redis"
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "==> starting postgresql on 127.0.0.1:5432"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start \
      || echo "warning: could not start postgresql"
  fi
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && command -v rabbitmq-server >/dev/null 2>&1; then
  echo "==> starting rabbitmq on 127.0.0.1:5672"
  rabbitmq-server -detached || echo "warning: could not start rabbitmq"
fi
for _ in $(seq 1 30); do
  (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && exit 0
  sleep 1
done
echo "warning: redis or postgresql is not answering; their tests will be skipped with a reason"
exit 0
