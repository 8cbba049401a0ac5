/*
 * pii.h - does a value, or a column's name, look like personal data?
 * Pure functions, thread-safe.  Used by `meshctl init` (to propose a
 * classification) and by the governance rule "personal data must be
 * classified" at publish.
 */
#ifndef PII_H
#define PII_H

#include <stdbool.h>
#include <stddef.h>

enum pii_kind {
	PII_EMAIL = 1 << 0,
	PII_PHONE = 1 << 1,
	PII_IBAN = 1 << 2,
	PII_CARD = 1 << 3,        /* 13-19 digits passing the Luhn check */
	PII_IPV4 = 1 << 4,
	PII_IPV6 = 1 << 5,
	PII_BIRTH_DATE = 1 << 6,  /* by column name only */
	PII_NAME = 1 << 7,        /* by column name only */
};

/* Detectors that match the value (a bit mask of enum pii_kind). */
unsigned pii_detect_value(const char *v, size_t len);
/* Detectors suggested by a column name (dob, birth_date, first_name, ...). */
unsigned pii_column_name_hint(const char *name);
/* "email", "phone number", ... for the lowest set bit. */
const char *pii_kind_name(unsigned kinds);

/* Columns judged over a sample: a column is personal data when at least
 * PII_SHARE of its non-empty sampled values match one detector. */
#define PII_SHARE 0.8

#endif
