/* warmup.c - see warmup.h. */
#include "warmup.h"

/* pandas imports and builds much more on first use (describe, the repr
 * formatters: ~20 ms); done once, shared, instead of in every REPL */
const char default_warmup[] = "try:\n"
                              "    import numpy, pandas\n"
                              "except ImportError:\n"
                              "    pass\n"
                              "else:\n"
                              "    str(pandas.DataFrame({'a': [1.0, 2.0]}).describe())\n";
