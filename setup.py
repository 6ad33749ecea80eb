"""Builds the one compiled extension, ``noisyseg._C``.

C++ sources under ``csrc/`` are always compiled. CUDA sources (``*.cu``) join only when a CUDA
toolkit and a CUDA-enabled torch are both present, or when ``FORCE_CUDA=1``. ``NOISYSEG_NO_EXT=1``
skips the extension entirely (the package then runs on its pure-torch references).
The decision is printed so that a build log says which kernels a user got.
"""

import glob
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _sources(pattern: str) -> list[str]:
    return sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(HERE, "csrc", "**", pattern), recursive=True))


def _extensions():
    if os.environ.get("NOISYSEG_NO_EXT") == "1":
        print("noisyseg setup: NOISYSEG_NO_EXT=1, building no extension (pure-torch references only)")
        return [], {}
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

    cpp = _sources("*.cpp")
    cu = _sources("*.cu")
    force = os.environ.get("FORCE_CUDA") == "1"
    with_cuda = force or (CUDA_HOME is not None and torch.version.cuda is not None)
    why = ("FORCE_CUDA=1" if force else f"CUDA_HOME={CUDA_HOME}, torch CUDA {torch.version.cuda}")
    print(f"noisyseg setup: {'building' if with_cuda else 'skipping'} CUDA kernels ({why}); "
          f"{len(cpp)} C++ and {len(cu) if with_cuda else 0} CUDA sources")
    # -fno-trapping-math lets the compiler if-convert (and so vectorise) loops with float selects;
    # nothing here relies on floating-point exception flags.
    cxx = ["-O3", "-fno-trapping-math", "-std=c++20"]
    if os.environ.get("NOISYSEG_NO_OPENMP") != "1":
        cxx.append("-fopenmp")
    define = [("NOISYSEG_WITH_CUDA", None)] if with_cuda else []
    kwargs = dict(
        name="noisyseg._C",
        sources=cpp + (cu if with_cuda else []),
        include_dirs=[os.path.join(HERE, "csrc")],
        define_macros=define,
        extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]},
        extra_link_args=["-fopenmp"] if "-fopenmp" in cxx else [],
    )
    ext = CUDAExtension(**kwargs) if with_cuda else CppExtension(**kwargs)
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
