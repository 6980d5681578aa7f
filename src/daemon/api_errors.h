/* api_errors.h - operation errors (operr.h) to API errors (errors.h). */
#ifndef AIRLOCK_API_ERRORS_H
#define AIRLOCK_API_ERRORS_H

#include "errors.h"
#include "operr.h"

/* Fill err with the status and code the API answers for op (its message
 * kept); returns ret. */
int api_error_from_op(struct api_error *err, int ret, const struct op_error *op);

#endif
