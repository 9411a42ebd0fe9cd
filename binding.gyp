{
  "variables": {
    "ks_isa_flags": ["-std=c++17", "-O3", "-fPIC", "-fno-math-errno"]
  },
  "target_defaults": {
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"]
  },
  "targets": [
    {
      "target_name": "kintsugi_isa_base",
      "type": "static_library",
      "sources": ["native/cpu/isa/kernels_base.cpp"],
      "cflags_cc": ["<@(ks_isa_flags)"]
    },
    {
      "target_name": "kintsugi_isa_avx2",
      "type": "static_library",
      "sources": ["native/cpu/isa/kernels_avx2.cpp"],
      "cflags_cc": ["<@(ks_isa_flags)"],
      "conditions": [["target_arch=='x64'", {"cflags_cc": ["-mavx2", "-mfma"]}]]
    },
    {
      "target_name": "kintsugi_isa_avx512",
      "type": "static_library",
      "sources": ["native/cpu/isa/kernels_avx512.cpp"],
      "cflags_cc": ["<@(ks_isa_flags)"],
      "conditions": [["target_arch=='x64'", {"cflags_cc": ["-mavx512f", "-mavx2", "-mfma"]}]]
    },
    {
      "target_name": "kintsugi",
      "dependencies": ["kintsugi_isa_base", "kintsugi_isa_avx2", "kintsugi_isa_avx512"],
      "sources": ["<!@(node native/scripts/sources.mjs)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/include"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "KS_WITH_CUDA=0"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti"],
      "ldflags": ["-pthread"]
    }
  ]
}
