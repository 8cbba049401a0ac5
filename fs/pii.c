/*
 * pii.c - personal-data detectors (contract in include/pii.h).  Each is a
 * strict syntactic check (with checksums where the format has one), so a
 * match is strong evidence, not a guess.
 */
#include "pii.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

static bool is_email(const char *v, size_t n)
{
	const char *at = memchr(v, '@', n);
	if (!at || at == v || at == v + n - 1 || memchr(at + 1, '@', (size_t)(v + n - at - 1)))
		return false;
	for (const char *p = v; p < at; p++)
		if (!(isalnum((unsigned char)*p) || strchr(".!#$%&'*+/=?^_`{|}~-", *p)))
			return false;
	const char *dot = NULL;
	for (const char *p = at + 1; p < v + n; p++) {
		if (*p == '.')
			dot = p;
		else if (!(isalnum((unsigned char)*p) || *p == '-'))
			return false;
	}
	return dot && dot > at + 1 && dot < v + n - 2;
}

static bool is_phone(const char *v, size_t n)
{
	size_t digits = 0;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (isdigit((unsigned char)c))
			digits++;
		else if (!(c == ' ' || c == '-' || c == '(' || c == ')' || c == '.' || (c == '+' && i == 0)))
			return false;
	}
	/* E.164 allows 15 digits; national numbers have at least 7.  A bare
	 * digit string is too ambiguous (ids, amounts): require + or a separator. */
	return digits >= 7 && digits <= 15 && (v[0] == '+' || strpbrk(v, " -().") != NULL) &&
	       (v[0] == '+' || v[0] == '(' || v[0] == '0');
}

static bool is_iban(const char *v, size_t n)
{
	char s[40];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] == ' ')
			continue;
		if (k >= 34 || !isalnum((unsigned char)v[i]))
			return false;
		s[k++] = (char)toupper((unsigned char)v[i]);
	}
	if (k < 15 || !isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]) || !isdigit((unsigned char)s[3]))
		return false;
	/* mod 97 of the rearranged number (ISO 13616) */
	unsigned rem = 0;
	for (size_t i = 0; i < k; i++) {
		char c = s[(i + 4) % k];
		if (isdigit((unsigned char)c))
			rem = (rem * 10 + (unsigned)(c - '0')) % 97;
		else
			rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
	}
	return rem == 1;
}

static bool is_card(const char *v, size_t n)
{
	int digits[32], k = 0;
	for (size_t i = 0; i < n; i++) {
		if (isdigit((unsigned char)v[i])) {
			if (k >= 19)
				return false;
			digits[k++] = v[i] - '0';
		} else if (v[i] != ' ' && v[i] != '-') {
			return false;
		}
	}
	if (k < 13)
		return false;
	int sum = 0;
	for (int i = k - 1, alt = 0; i >= 0; i--, alt ^= 1) {
		int d = digits[i];
		if (alt && (d *= 2) > 9)
			d -= 9;
		sum += d;
	}
	return sum % 10 == 0;
}

static bool is_ip(const char *v, size_t n, int family)
{
	char buf[64];
	unsigned char out[16];
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return inet_pton(family, buf, out) == 1;
}

unsigned pii_detect_value(const char *v, size_t n)
{
	unsigned k = 0;
	if (n < 3 || n > 254)
		return 0;
	if (is_email(v, n))
		k |= PII_EMAIL;
	if (is_card(v, n))
		k |= PII_CARD;
	else if (is_phone(v, n))
		k |= PII_PHONE;
	if (is_iban(v, n))
		k |= PII_IBAN;
	if (is_ip(v, n, AF_INET))
		k |= PII_IPV4;
	else if (memchr(v, ':', n) && is_ip(v, n, AF_INET6))
		k |= PII_IPV6;
	return k;
}

unsigned pii_column_name_hint(const char *name)
{
	static const char *birth[] = {"dob", "birth_date", "date_of_birth", "birthdate", "birthday", "birth_day"};
	static const char *names[] = {"first_name", "last_name", "full_name", "given_name", "family_name",
				      "surname", "firstname", "lastname", "fullname"};
	for (size_t i = 0; i < sizeof birth / sizeof *birth; i++)
		if (!strcasecmp(name, birth[i]))
			return PII_BIRTH_DATE;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (!strcasecmp(name, names[i]))
			return PII_NAME;
	return 0;
}

const char *pii_kind_name(unsigned kinds)
{
	static const char *names[] = {"email address", "phone number", "IBAN", "card number", "IPv4 address",
				      "IPv6 address", "date of birth", "person's name"};
	for (int i = 0; i < 8; i++)
		if (kinds & (1u << i))
			return names[i];
	return "personal data";
}
