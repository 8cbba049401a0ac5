/* Unit tests for pii.c and infer.c's value typing through infer_file. */
#include "check.h"
#include "infer.h"
#include "pii.h"

#include <stdio.h>
#include <unistd.h>

static unsigned d(const char *s)
{
	return pii_detect_value(s, strlen(s));
}

int main(void)
{
	CHECK(d("jane.doe+x@example.co.uk") & PII_EMAIL);
	CHECK(!(d("jane@localhost") & PII_EMAIL));
	CHECK(!(d("a@b@c.de") & PII_EMAIL));
	CHECK(d("+49 30 1234567") & PII_PHONE);
	CHECK(d("(030) 123-4567") & PII_PHONE);
	CHECK(!(d("1234567") & PII_PHONE));               /* a bare number is not a phone */
	CHECK(d("DE89 3704 0044 0532 0130 00") & PII_IBAN);
	CHECK(!(d("DE89 3704 0044 0532 0130 01") & PII_IBAN));
	CHECK(d("4111 1111 1111 1111") & PII_CARD);        /* Luhn-valid test number */
	CHECK(!(d("4111 1111 1111 1112") & PII_CARD));
	CHECK(d("192.168.1.20") & PII_IPV4);
	CHECK(!(d("192.168.1.300") & PII_IPV4));
	CHECK(d("2001:db8::ff00:42:8329") & PII_IPV6);
	CHECK(!(d("12:30") & PII_IPV6));
	CHECK(d("hello world") == 0);
	CHECK(pii_column_name_hint("date_of_birth") == PII_BIRTH_DATE);
	CHECK(pii_column_name_hint("Last_Name") == PII_NAME);
	CHECK(pii_column_name_hint("amount") == 0);

	char path[] = "/tmp/test_pii.XXXXXX.csv";
	int fd = mkstemps(path, 4);
	const char *csv = "id,score,when,day,flag,mail,note\n"
			  "1,0.5,2026-11-01T10:00:00Z,2026-11-01,true,a@example.com,x\n"
			  "2,3,2026-11-02 10:00:00,2026-11-02,false,b@example.com,\n"
			  "3,-1e3,2026-11-03T10:00:00+01:00,2026-11-03,true,c@example.com,x\n";
	CHECK(write(fd, csv, strlen(csv)) == (ssize_t)strlen(csv));
	close(fd);
	struct infer_result *r = NULL;
	struct mesh_err err = {0};
	CHECK(infer_file(path, NULL, &r, &err) == 0);
	if (r) {
		CHECK(r->n_cols == 7 && r->rows == 3 && !r->sampled);
		CHECK(r->cols[0].type == LT_INTEGER && r->cols[0].unique && r->cols[0].required);
		CHECK(r->cols[1].type == LT_NUMBER);
		CHECK(r->cols[2].type == LT_TIMESTAMP);
		CHECK(r->cols[3].type == LT_DATE);
		CHECK(r->cols[4].type == LT_BOOLEAN && !r->cols[4].unique);
		CHECK(r->cols[5].pii & PII_EMAIL);
		CHECK(r->cols[6].type == LT_STRING && !r->cols[6].required);
		char *yaml = NULL;
		CHECK(infer_contract_yaml(r, "d", "p", "1.0.0", &yaml, &err) == 0);
		struct contract *c = NULL;
		CHECK(contract_parse(yaml, strlen(yaml), "draft.yaml", &c, &err) == 0);
		CHECK(c && c->n_objects == 1 && c->objects[0].n_props == 7);
		CHECK(c && !strcmp(c->objects[0].props[5].classification, "pii"));
		contract_free(c);
		free(yaml);
		infer_result_free(r);
	}
	struct infer_options sample = {.sample_rows = 2};
	CHECK(infer_file(path, &sample, &r, &err) == 0 && r->rows == 2 && r->sampled);
	infer_result_free(r);
	unlink(path);
	return check_done("test_pii");
}
