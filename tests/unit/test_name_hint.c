/* Unit tests for name_hint.c: distances, and hints only for likely typos. */
#include "check.h"
#include "name_hint.h"

#include <stdint.h>

int main(void)
{
	CHECK(name_hint_distance("", "") == 0);
	CHECK(name_hint_distance("abc", "") == 3);
	CHECK(name_hint_distance("requried", "required") == 1);   /* a swap costs one */
	CHECK(name_hint_distance("kitten", "sitting") == 3);
	CHECK(name_hint_distance("CustomerID", "customer_id") == 1);
	char long_name[NAME_HINT_MAX_LEN + 2];
	memset(long_name, 'a', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	CHECK(name_hint_distance(long_name, "a") == SIZE_MAX);
	static const char *const fields[] = {"required", "unique", "name", "logicalType", "classification"};
	CHECK(!strcmp(name_hint_closest("requried", fields, 5), "required"));
	CHECK(!strcmp(name_hint_closest("Unique", fields, 5), "unique"));
	CHECK(!strcmp(name_hint_closest("logicaltype", fields, 5), "logicalType"));
	CHECK(!strcmp(name_hint_closest("clasification", fields, 5), "classification"));
	CHECK(name_hint_closest("owner", fields, 5) == NULL);         /* nothing close */
	CHECK(name_hint_closest("id", fields, 5) == NULL);
	CHECK(name_hint_closest("x", fields, 0) == NULL);
	CHECK(name_hint_closest(long_name, fields, 5) == NULL);
	static const char *const got[] = {"order_id", "quantiy", "zzz"}, *const want[] = {"order_id", "quantity"};
	char *h = name_hint_columns(got, 3, want, 2);
	CHECK(!strcmp(h, "; 'quantiy' is not a contract column, did you mean 'quantity'?"));
	free(h);
	h = name_hint_columns(want, 2, want, 2);
	CHECK(h && !*h);
	free(h);
	return check_done("test_name_hint");
}
