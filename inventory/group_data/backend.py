# Settings of the backend box (the model server). One line each: the value, its unit, why.

model_server_model_size_gib = 45.0  # GiB on disk; Qwen3-Next-80B-A3B Q4_K_M. Sizes the memory budget
