#!/usr/bin/env bash
# System packages the tests and the demo use: graphviz (`dot`, for the diagrams), chromium (the review
# page screenshot test), docker-compose (to run `docker-compose config` on generated compose files) and
# prometheus (`promtool`, to check and unit-test the generated Prometheus config and alert rules) and a Java 17
# runtime (pyspark's local Spark session in the Spark end-to-end tests).
# Installs only what is missing, with apt-get when we are root; never fails the build: a missing tool
# makes its tests skip with a reason.
set -u
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: ${missing[*]} not installed (apt-get install ${missing[*]}); their tests will be skipped"
  exit 0
fi
echo "==> installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
  || echo "warning: could not install ${missing[*]}; their tests will be skipped"
exit 0
