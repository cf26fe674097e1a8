{
  "targets": [
    {
      "target_name": "droptrace",
      "sources": ["native/addon/addon.cc", "native/addon/probe.c", "native/addon/attach.c", "native/addon/ring.c", "native/addon/drain.c", "native/addon/maps.c", "native/addon/functions.c", "native/addon/record_writer.c"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/include",
        "native/addon",
        "build-bpf",
        "build-bpf/libbpf/root/include"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-Wall", "-Wno-missing-field-initializers"],
      "cflags_cc": ["-std=c++17", "-Wall"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": [
        "<(module_root_dir)/build-bpf/libbpf/libbpf.a", "-lelf", "-lz"
      ]
    }
  ]
}
