{
  "targets": [
    {
      "target_name": "heapscope",
      "sources": [
        "native/addon.cc",
        "native/live-set.cc",
        "native/loaded.cc",
        "native/alloc.cc",
        "native/copies.cc",
        "native/freeze.cc",
        "native/memory.cc",
        "native/stats.cc",
        "native/plan.cc",
        "native/probes.cc",
        "native/remote.cc",
        "native/untouched.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"],
      "defines": ["NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      # Hidden symbols: the addon's own calls (its live set's) go straight to
      # the function, not through the PLT, and Node-API's through the GOT.
      # A malloc + free through the raw addon took ~2 ns less, in turns with
      # the default build in one process (46-47 ns against 44-45).
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2", "-fvisibility=hidden", "-fno-plt"],
      "libraries": ["-ldl"]
    }
  ]
}
