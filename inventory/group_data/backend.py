# What this site sets differently from the defaults on the backend (the model server).
# Defaults and their reasons: roles/model_server/settings.py, or docs/roles.md's tables.

model_server_model_alias = "qwen3-next-80b-a3b"  # the model id clients and the gateway ask for

# Strix Halo (Radeon 8060S) on Debian 13, every layer on its GPU through Vulkan (RADV):
#   model_server_compute = "vulkan"
