# What this site sets differently from the defaults on the frontends (the OpenClaw gateway).
# Defaults and their reasons: roles/gateway/settings.py, or docs/roles.md's tables. The model's id, context and answer
# length are not set here: the gateway takes them from the backend's model_server_* settings. E.g.:
#
# gateway_openclaw_version = "2026.9.6"  # bump to upgrade; a downgrade is refused
# gateway_npm_registry = "https://npm.example.lan/"  # the site's npm mirror
