"""Ways module-level code could get past the tensor-pure filter, one small file each. Every form
writes its marker file (`{m}`) if any of its payload runs; the tests assert none ever does, in a
trusted workspace, through the CLI and the language server. `{outside}` is a folder outside the
workspace, `{pickle}` a pickle whose loading writes the marker. Support files the forms need are
in SUPPORT (workspace-relative path -> text); LINKS are symlinks made inside the workspace."""

from __future__ import annotations

HEAD = "import os\nimport torch\nimport torch.nn as nn\n"
MODEL = "\nclass Net(nn.Module):\n    def __init__(self, n=4):\n        super().__init__()\n" \
        "        self.fc = nn.Linear(n, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n"
TOUCH = 'os.system("touch {m}")'

FORMS: dict[str, str] = {
    # -- callables smuggled into higher-order builtins, aliases and getattr -----------------------------
    "map_os_system": HEAD + 'list(map(os.system, ["touch {m}"]))\n',
    "alias_os_system": HEAD + 's = os.system\ns("touch {m}")\n',
    "from_import_alias": "from os import system\ns = system\ns('touch {m}')\n",
    "getattr_builtins_exec": "import builtins\ngetattr(builtins, 'exec')(\"open('{m}', 'w')\")\n",
    "getattr_bound_then_called": "import builtins\ne = getattr(builtins, 'exec')\ne(\"open('{m}', 'w')\")\n",
    "map_getattr": "import builtins\ne = list(map(getattr, [builtins], ['exec']))[0]\ne(\"open('{m}', 'w')\")\n",
    "sorted_key": HEAD + 'sorted(["touch {m}"], key=os.system)\n',
    "max_key": HEAD + 'x = max(["touch {m}"], key=os.system)\n',
    "starmap": HEAD + 'import itertools\nlist(itertools.starmap(os.system, [("touch {m}",)]))\n',
    "methodcaller": HEAD + 'import operator\noperator.methodcaller("system", "touch {m}")(os)\n',
    "attrgetter_dunder": "import operator\nsubs = operator.attrgetter('__class__.__base__.__subclasses__')(())\n"
                         "p = [c for c in subs() if c.__name__ == 'Popen'][0](['touch', '{m}'])\n",
    "dunder_subclasses": "p = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0]"
                         "(['touch', '{m}'])\n",
    "globals_builtins": "globals()['__builtins__']['exec'](\"open('{m}', 'w')\")\n",
    "fstring_call": HEAD + 'x = f"{{os.system(\'touch {m}\')}}"\n',
    "walrus_alias": HEAD + 'x = [(s := os.system)]\ns("touch {m}")\n',
    "container_alias": HEAD + 'd = {{"f": os.system}}\nd["f"]("touch {m}")\n',
    "import_after_assign": "x = 3\nfrom os import system as x\nlist(map(x, ['touch {m}']))\n",
    "import_over_model_class": HEAD + MODEL + "\nfrom os import system as Net\nlist(map(Net, ['touch {m}']))\n",
    "from_sys_import_modules": "from sys import modules\nm = modules['os']\nm.system('touch {m}')\n"
                               "list(map(modules['os'].system, ['touch {m}']))\n",
    "sys_modules": "import sys\nsys.modules['os'].system('touch {m}')\n",
    "file_function_in_map": HEAD + f"def evil(x):\n    {TOUCH}\n\nlist(map(evil, [1]))\n",
    # -- what runs when a def or a class statement runs ---------------------------------------------------
    "default_argument": HEAD + f"def f(x={TOUCH}):\n    return x\n",
    "lambda_default": HEAD + f"def f(x=lambda y={TOUCH}: y):\n    return x\n",
    "annotation": HEAD + f"def f(x: {TOUCH}):\n    return x\n",
    "module_annotation": HEAD + f"x: {TOUCH} = 1\n",
    "method_default": HEAD + f"class M(nn.Module):\n    def forward(self, x, k={TOUCH}):\n        return x\n",
    "metaclass": HEAD + "class Meta(type):\n    def __new__(mcls, name, bases, ns):\n        " + TOUCH +
                 "\n        return super().__new__(mcls, name, bases, ns)\n\n"
                 "class Model(nn.Module, metaclass=Meta):\n    def forward(self, x):\n        return x\n",
    "class_base_call": HEAD + f"class A({TOUCH} or object):\n    pass\n",
    "class_keyword": HEAD + f"class A(object, flag={TOUCH}):\n    pass\n",
    "nested_class_body": HEAD + f"class Outer:\n    class Inner:\n        {TOUCH}\n",
    "init_subclass": HEAD + "class Base(nn.Module):\n    def __init_subclass__(cls, **kw):\n        " + TOUCH +
                     "\n\nclass Model(Base):\n    def forward(self, x):\n        return x\n",
    "set_name": HEAD + "from dataclasses import dataclass\n\n@dataclass\nclass Desc:\n    n: int = 1\n\n"
                "    def __set_name__(self, owner, name):\n        " + TOUCH + "\n\nclass Holder:\n    d = Desc()\n",
    "class_getitem": HEAD + "from dataclasses import dataclass\n\n@dataclass\nclass G:\n    n: int = 1\n\n"
                     "    def __class_getitem__(cls, item):\n        " + TOUCH + "\n        return cls\n\nx = G[0]\n",
    "field_default_factory": HEAD + "from dataclasses import dataclass, field\n\ndef evil():\n    " + TOUCH +
                             "\n    return []\n\n@dataclass\nclass C:\n    x: list = field(default_factory=evil)\n\n"
                             "c = C()\n",
    # -- decorators -----------------------------------------------------------------------------------------
    "decorator_file_defined": HEAD + "def dataclass(c):\n    " + TOUCH + "\n    return c\n\n"
                              "@dataclass\nclass C:\n    x: int = 1\n",
    "fake_dataclass_init": HEAD + "def dataclass(c):\n    return c\n\n@dataclass\nclass C:\n    def __init__(self):\n"
                           "        " + TOUCH + "\n\nc = C()\n",
    "fake_namedtuple_init": HEAD + "class NamedTuple:\n    def __init__(self):\n        " + TOUCH +
                            "\n\nclass C(NamedTuple):\n    pass\n\nc = C()\n",
    "class_attribute_function": HEAD + f"def evil(cmd):\n    {TOUCH}\n\nclass K:\n    run = evil\n\nK.run('x')\n"
                                "k = K()\nk.run('x')\n",
    "model_holding_file_function": HEAD + f"def evil(cmd):\n    {TOUCH}\n" + MODEL.replace("n=4):", "n=4, act=None):")
                                   .replace("super().__init__()", "super().__init__()\n        self.act = act")
                                   + "\nnet = Net(act=evil)\nnet.act('x')\n",
    "decorator_fake_setter": HEAD + "class Evil:\n    @staticmethod\n    def setter(f):\n        " + TOUCH +
                             "\n        return f\n\nclass M:\n    @Evil.setter\n    def f(self):\n        pass\n",
    "decorator_arguments": HEAD + f"import functools\n\n@functools.lru_cache(maxsize={TOUCH})\ndef f():\n    pass\n",
    "dataclass_arguments": HEAD + f"from dataclasses import dataclass\n\n@dataclass(order={TOUCH})\nclass C:\n"
                           "    x: int = 1\n",
    # -- torch entry points that leave torch --------------------------------------------------------------
    "torch_load_getattr": "import torch\nx = getattr(torch, 'load')('{pickle}', weights_only=False)\n",
    "torch_load_alias": "import torch\nL = torch.load\nx = L('{pickle}', weights_only=False)\n",
    "torch_load_from_import": "from torch.serialization import load\nx = load('{pickle}', weights_only=False)\n",
    "collect_env_run": "from torch.utils import collect_env\ncollect_env.run('touch {m}')\n",
    "collect_env_dotted": "import torch.utils.collect_env\ntorch.utils.collect_env.run('touch {m}')\n",
    "torch_from_file": "import torch\nt = torch.from_file('{m}', shared=True, size=4)\n",
    "storage_from_file": "import torch\nt = torch.zeros(1).untyped_storage().from_file('{m}', True, 4)\n",
    "torch_save_map": "import torch\nlist(map(torch.save, [1], ['{m}']))\n",
    "torch_save_alias": "import torch\ns = torch.save\ns(1, '{m}')\n",
    "jit_load_marker": "import torch\nm = torch.jit.load('{m}')\n",  # tries to open it: refused statically
    "ops_load_library": "import torch\ntorch.ops.load_library('{m}.so')\n",
    "classes_load_library": "import torch\ntorch.classes.load_library('{m}.so')\n",
    # -- hints, pyproject.toml, __main__ ------------------------------------------------------------------
    "hint_comment": HEAD + "\nclass HintNet(nn.Module):  # shapelens: HintNet(n=__import__('os').system('touch {m}'))\n"
                    "    def __init__(self, n):\n        super().__init__()\n        self.fc = nn.Linear(4, 2)\n\n"
                    "    def forward(self, x):\n        return self.fc(x)\n",
    "hint_comment_map": HEAD + "\nclass HintMap(nn.Module):  # shapelens: HintMap(n=list(map(os.system, ['touch {m}'])))\n"
                        "    def __init__(self, n):\n        super().__init__()\n        self.fc = nn.Linear(4, 2)\n\n"
                        "    def forward(self, x):\n        return self.fc(x)\n",
    "pyproject_init": HEAD + "\nclass EvilInit(nn.Module):\n    def __init__(self, n):\n        super().__init__()\n"
                      "        self.fc = nn.Linear(4, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n",
    "main_call_site": HEAD + MODEL + "\nif __name__ == '__main__':\n    net = Net(list(map(os.system, ['touch {m}'])))\n",
    "main_call_site_alias": HEAD + MODEL + "\nrun = 3\nif __name__ == '__main__':\n    run = os.system\n"
                            "    net = Net(n=run('touch {m}'))\n",
    # -- files the probe loads -----------------------------------------------------------------------------
    "symlink_outside": "import linked_out\n",
    "symlink_site_packages": "import linked_sp\n",
    "sys_path_extend": "import sys\nsys.path += ['{outside}']\nimport outside_mod\n",
    "sys_path_append": "import sys\nsys.path.append('{outside}')\nimport outside_mod\n",
    "sys_path_slice": "import sys\nsys.path[:0] = ['{outside}']\nimport outside_mod\n",
    "module_getattr_hook": "from hooky import anything\n",
    "shadow/use_os": "import os\nos.system('touch {m}')\nx = os.system('touch {m}')\n",
}

PYPROJECT = ("[project]\nname = 'escapes'\n\n[tool.shapelens.models.EvilInit]\n"
             "init = \"EvilInit(n=__import__('os').system('touch {m}'))\"\n")
# Written under the workspace (path -> text); `{m}` is then the marker of the form named after ':'.
SUPPORT = {
    "hooky.py:module_getattr_hook": "import os\n\n\ndef __getattr__(name):\n    " + TOUCH + "\n    return 1\n",
    # Jedi follows `os.system` into this file and finds torch; the probe imports the real os.
    "shadow/os.py:shadow/use_os": "from torch import zeros as system\n",
}
# Outside the workspace: folder-relative path -> (text, marker form)
OUTSIDE = {
    "outside_mod.py": ("import os\n" + TOUCH + "\n", ("sys_path_extend", "sys_path_append", "sys_path_slice")),
    "pkg_out/__init__.py": ("import os\n" + TOUCH + "\n", ("symlink_outside",)),
    "lib/site-packages/pkg_sp/__init__.py": ("import os\n" + TOUCH + "\n", ("symlink_site_packages",)),
}
LINKS = {"linked_out": "pkg_out", "linked_sp": "lib/site-packages/pkg_sp"}  # workspace name -> outside path
