import subprocess
import sys

import pytest

from uniroute._optional import require


def test_an_installed_module_is_returned():
    assert require("json", "litellm") is sys.modules["json"]


@pytest.mark.parametrize("module", ["uniroute_no_such_sdk", "uniroute_no_such_sdk.sub.module"])
def test_a_missing_module_names_the_extra_that_installs_it(module):
    with pytest.raises(ImportError, match=r"pip install 'uniroute\[langchain\]'") as info:
        require(module, "langchain")
    assert info.value.name == module
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_a_broken_dependency_of_an_installed_module_keeps_its_own_error(tmp_path, monkeypatch):
    (tmp_path / "uniroute_fake_sdk.py").write_text("import uniroute_fake_sdk_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="uniroute_fake_sdk_dependency") as info:
        require("uniroute_fake_sdk", "litellm")
    assert "pip install" not in str(info.value)


def test_an_unknown_extra_is_a_programming_error():
    with pytest.raises(ValueError, match="litellm, langchain"):
        require("json", "litelm")


@pytest.mark.parametrize(
    ("front_door", "sdk", "extra"),
    [
        ("uniroute.integrations.litellm", "litellm", "litellm"),
        ("uniroute.integrations.langchain", "langchain_core", "langchain"),
    ],
)
def test_front_doors_without_their_sdk_name_their_extra(front_door, sdk, extra):
    # A finder that refuses the SDK stands in for an install without the extra.
    code = (
        "import sys, importlib.abc\n"
        "class Missing(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] == {sdk!r}: raise ModuleNotFoundError(name=name)\n"
        "sys.meta_path.insert(0, Missing())\n"
        "try:\n"
        f"    import {front_door}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert f"pip install 'uniroute[{extra}]'" in out.stdout, out.stderr[-2000:]
