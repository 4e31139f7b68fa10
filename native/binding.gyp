{
  "targets": [
    {
      "target_name": "boxer_native",
      "sources": ["addon/addon.cc", "addon/sockets.cc", "addon/connect_wait.cc", "addon/fdpass.cc", "addon/splice.cc", "addon/secrecy.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"],
      "cflags_cc": ["-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-std=c++17"]
    }
  ]
}
