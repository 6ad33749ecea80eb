// CI-only stand-in for a header that CPU builds of torch do not ship; lets nvcc compile-check .cu files.
#pragma once
