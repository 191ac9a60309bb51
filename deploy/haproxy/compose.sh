#!/bin/sh
# The compose `cluster` profile's HAProxy: the shared template, with the API processes found
# through Docker's DNS (up to 3 replicas of `seatgrid-api`).
set -eu
here=${HAPROXY_TEMPLATE_DIR:-$(dirname "$0")}
sed -e 's/@LISTEN@/:5100/' \
    -e 's/@SERVERS@/    server-template api 3 seatgrid-api:5000 resolvers docker init-addr none/' \
    "$here/haproxy.cfg.template" >/tmp/haproxy.cfg
printf 'resolvers docker\n    nameserver dns 127.0.0.11:53\n    hold valid 5s\n' >>/tmp/haproxy.cfg
exec haproxy -W -db -f /tmp/haproxy.cfg
