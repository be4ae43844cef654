/* SPDX-License-Identifier: MIT */
/* smmu-lab shim: see ../kshim.h */
#include "../kshim.h"
