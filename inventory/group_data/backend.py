# What this site sets differently from the defaults on the backend (the model server).
# Defaults and their reasons: roles/model_server/settings.py, or README's tables.

model_server_model_alias = "qwen3-next-80b-a3b"  # the model id clients and the gateway ask for

# Strix Halo (Radeon 8060S) with Vulkan:
#   model_server_cmake_args = "-DGGML_VULKAN=ON -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
#   model_server_build_packages = ["libvulkan-dev", "glslc"]
#   model_server_gpu_layers = -1
# ROCm: "-DGGML_HIP=ON -DAMDGPU_TARGETS=gfx1151 -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" with ROCm installed
