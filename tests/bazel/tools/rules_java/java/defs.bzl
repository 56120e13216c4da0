# A local stand-in for @rules_java: Bazel 4's own Java rules under the names rules_java exports
# (@bazel_tools loads them to register its JDK toolchains, even for a C build).
def java_binary(**kwargs):
    native.java_binary(**kwargs)
def java_import(**kwargs):
    native.java_import(**kwargs)
def java_library(**kwargs):
    native.java_library(**kwargs)
def java_runtime(**kwargs):
    native.java_runtime(**kwargs)
def java_toolchain(**kwargs):
    native.java_toolchain(**kwargs)
