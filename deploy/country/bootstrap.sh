#!/usr/bin/env bash
# Once, on a new installation (deploy/README.md, "Running it for a whole country"); every step
# is idempotent, so it is also what to run after an upgrade. Run as the tidtam user on a
# machine with the checkout in /opt/tidtam and /etc/tidtam/tidtam.env in place.
set -euo pipefail
cd /opt/tidtam
set -a; . /etc/tidtam/tidtam.env; set +a
export TIDTAM_HOME=/opt/tidtam

# 1. tidtam's database: migrate, load the 76 provinces' 878 districts, launch the directive.
.venv/bin/tidtam init --provinces all --exist-ok
# Each directive to follow: .venv/bin/tidtam launch directives/LETTER.yaml (idempotent).

# 2. The work pool and the deployments of prefect.yaml (schedules in Asia/Bangkok time).
.venv/bin/prefect work-pool create tidtam-process --type process 2>/dev/null \
  || echo "work pool tidtam-process exists"
.venv/bin/prefect --no-prompt deploy --all

# 3. The automations that run ops-alert when the sweep or the digest fails or falls silent.
.venv/bin/tidtam watch-flows
