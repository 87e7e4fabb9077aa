/* The two functions by which MindSpore's op-plugin loader (MS_OP_PLUGIN_PATH) learns which
 * operators the library serves: every entry point of entry.h's list. */
#include "entry.h"

ATS_EXPORT int GetRegisteredOpCount() { return static_cast<int>(ats::operators().size()); }

ATS_EXPORT char **GetAllRegisteredOps() { return ats::operators().data(); }
