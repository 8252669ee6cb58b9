# Settings of the backend box (the model server). One line each: the value, its unit, why.

model_server_version = "0.3.36"  # llama-cpp-python release; the wheelhouse is keyed by version + flags + CPU
model_server_cmake_args = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DGGML_OPENMP=OFF"  # portable CPU build
# Strix Halo (Radeon 8060S) with Vulkan: "-DGGML_VULKAN=ON -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" and
#   model_server_build_packages = ["libvulkan-dev", "glslc"], model_server_gpu_layers = -1
# ROCm: "-DGGML_HIP=ON -DAMDGPU_TARGETS=gfx1151 -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" with ROCm installed
model_server_build_packages = []  # extra Debian packages the build needs
model_server_model_size_gib = 45.0  # GiB on disk; Qwen3-Next-80B-A3B Q4_K_M. Sizes the memory budget
model_server_model_alias = "qwen3-next-80b-a3b"  # model id served at /v1/models and used by the gateway
model_server_context_tokens = 32768  # n_ctx; the gateway's prompts are ~13k tokens
model_server_max_answer_tokens = 4096  # tokens; the longest answer a client may ask for
model_server_threads = "auto"  # 'auto' = physical cores (hw_cpu_cores)
model_server_batch_tokens = 512  # n_batch, tokens per prompt-evaluation step
model_server_ubatch_tokens = 512  # n_ubatch, physical batch
model_server_gpu_layers = 0  # layers on the GPU; -1 = all (Vulkan/ROCm builds only)
model_server_mlock = True  # keep the weights in RAM, never in swap
model_server_chat_format = ""  # empty: the chat template inside the GGUF
model_server_prompt_cache_mib = 2048  # MiB of RAM prompt cache; warm TTFT depends on it
model_server_port = 8000  # loopback port; only the local TLS proxy connects
