#!/bin/sh
# Self-registration of a machine the control server does not manage (a VM, a bare-metal host, a
# cron box): register with a TTL, renew at a third of it, deregister on the way out.
#   CATENA_SERVER=http://127.0.0.1:7070 ./register.sh erp 127.69.0.31 8080
set -eu
SERVER=${CATENA_SERVER:-http://127.0.0.1:7070}
SERVICE=${1:?service}; ADDRESS=${2:?address}; PORT=${3:?port}; TTL=${TTL:-15}

ID=$(curl -fsS -X POST "$SERVER/v1/services/$SERVICE/endpoints" \
  -H 'content-type: application/json' \
  -d "{\"address\":\"$ADDRESS\",\"port\":$PORT,\"ttlSeconds\":$TTL,\"labels\":{\"kind\":\"vm\"}}" |
  sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
echo "registered $ADDRESS:$PORT in $SERVICE as $ID (TTL ${TTL}s)"

leave() {
  curl -fsS -X DELETE "$SERVER/v1/services/$SERVICE/endpoints/$ID" >/dev/null || true
  echo "deregistered $ID"
  exit 0
}
trap leave INT TERM

# A missed heartbeat only lets the TTL run out: the endpoint leaves DNS and the load balancers.
while :; do
  sleep $((TTL / 3))
  curl -fsS -X PUT "$SERVER/v1/services/$SERVICE/endpoints/$ID" >/dev/null ||
    echo "renewal failed (server away, or the registration expired)"
done
