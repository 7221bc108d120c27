"""`buildozer_binary` extension that @bazel_tools uses for `bazel mod tidy`; not available offline."""

def _buildozer_repo_impl(rctx):
    rctx.file("BUILD.bazel", "")

_buildozer_repo = repository_rule(implementation = _buildozer_repo_impl)

def _buildozer_binary_impl(_mctx):
    _buildozer_repo(name = "buildozer_binary")

buildozer_binary = module_extension(implementation = _buildozer_binary_impl)
