/* SPDX-License-Identifier: MIT */
/* smmu-lab shim: page-table pages come from kshim.h */
#include "kshim.h"
