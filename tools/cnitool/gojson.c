/* Go encoding/json's output byte for byte: libcni's cache and configs are compared as bytes by nobody,
 * but a cache we write must read back in libcni identically and a diff against libcni's must be empty. */
#include "gojson.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

struct member {
	cJSON *item;
	size_t pos;
};

static int member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int c = strcmp(x->item->string ? x->item->string : "", y->item->string ? y->item->string : "");
	/* stable: of equal keys the later one sorts later, so "keep the last" is "keep the run's end" */
	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sort obj's members; of equal keys keep the last. -1 on allocation failure (obj unchanged). */
static int sort_members(cJSON *obj)
{
	size_t n = 0, i, k;
	struct member *v;
	cJSON *c;

	for (c = obj->child; c; c = c->next)
		n++;
	if (n == 0)
		return 0;
	if (!(v = calloc(n, sizeof(*v))))
		return -1;
	for (i = 0, c = obj->child; c; c = c->next, i++)
		v[i] = (struct member){ c, i };
	qsort(v, n, sizeof(*v), member_cmp);
	for (i = 0, k = 0; i < n; i++) {
		if (i + 1 < n && member_cmp(&(struct member){ v[i].item, 0 }, &(struct member){ v[i + 1].item, 0 }) == 0) {
			v[i].item->next = v[i].item->prev = NULL;
			cJSON_Delete(v[i].item);
			continue;
		}
		v[k++] = v[i];
	}
	/* cJSON's list: next links forward, the first member's prev points at the last */
	for (i = 0; i < k; i++) {
		v[i].item->next = i + 1 < k ? v[i + 1].item : NULL;
		v[i].item->prev = i > 0 ? v[i - 1].item : v[k - 1].item;
	}
	obj->child = v[0].item;
	free(v);
	return 0;
}

void gojson_sort_keys(cJSON *obj)
{
	if (cJSON_IsObject(obj))
		(void)sort_members(obj);
}

void gojson_canon(cJSON *j)
{
	if (!j)
		return;
	if (cJSON_IsObject(j))
		(void)sort_members(j);
	for (cJSON *c = j->child; c; c = c->next)
		gojson_canon(c);
}

void gojson_string(const char *str, struct sb *b)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0, start = 0;

	sb_put(b, "\"", 1);
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			const char *esc = NULL;
			char u[7];
			if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
				i++;
				continue;
			}
			switch (c) {
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			default:
				snprintf(u, sizeof(u), "\\u00%c%c", hex[c >> 4], hex[c & 0xf]);
				esc = u;
			}
			sb_put(b, s + start, i - start);
			sb_puts(b, esc);
			start = ++i;
			continue;
		}
		uint32_t r = 0;
		size_t len = conf_utf8_seq(s + i, n - i, &r);
		if (len == 0) {
			sb_put(b, s + start, i - start);
			sb_puts(b, "\\ufffd");
			start = ++i;
			continue;
		}
		if (r == 0x2028 || r == 0x2029) {
			sb_put(b, s + start, i - start);
			sb_puts(b, r == 0x2028 ? "\\u2028" : "\\u2029");
			start = i + len;
		}
		i += len;
	}
	sb_put(b, s + start, n - start);
	sb_put(b, "\"", 1);
}

/* strconv.AppendFloat(f, 'f' or 'e', -1, 64) as encoding/json picks it, shortest round-trip digits. */
static void put_number(struct sb *b, double f)
{
	char tmp[48], digits[24], out[400];
	int prec, exp10, nd = 0, o = 0;
	double a = fabs(f);
	const char *p;

	if (!isfinite(f)) { /* cJSON never parses these; Go would refuse to marshal them */
		sb_puts(b, "null");
		return;
	}
	if (f == 0) {
		sb_puts(b, signbit(f) ? "-0" : "0");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
		if (strtod(tmp, NULL) == f)
			break;
	}
	p = tmp;
	if (*p == '-')
		out[o++] = *p++;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	exp10 = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (a < 1e-6 || a >= 1e21) {
		out[o++] = digits[0];
		if (nd > 1) {
			out[o++] = '.';
			memcpy(out + o, digits + 1, (size_t)nd - 1);
			o += nd - 1;
		}
		/* strconv writes at least two exponent digits (e+21, e-07); encoding/json trims e-07 to e-7 */
		if (exp10 < 0)
			o += snprintf(out + o, sizeof(out) - (size_t)o, "e-%d", -exp10);
		else
			o += snprintf(out + o, sizeof(out) - (size_t)o, "e+%02d", exp10);
	} else {
		int point = exp10 + 1;
		if (point <= 0) {
			out[o++] = '0';
			out[o++] = '.';
			for (int i = 0; i < -point; i++)
				out[o++] = '0';
			memcpy(out + o, digits, (size_t)nd);
			o += nd;
		} else if (point >= nd) {
			memcpy(out + o, digits, (size_t)nd);
			o += nd;
			for (int i = nd; i < point; i++)
				out[o++] = '0';
		} else {
			memcpy(out + o, digits, (size_t)point);
			o += point;
			out[o++] = '.';
			memcpy(out + o, digits + point, (size_t)(nd - point));
			o += nd - point;
		}
	}
	sb_put(b, out, (size_t)o);
}

static void marshal(const cJSON *j, struct sb *b, int indent, int depth)
{
	const cJSON *c;
	bool obj = cJSON_IsObject(j);

	if (cJSON_IsNull(j) || cJSON_IsInvalid(j)) {
		sb_puts(b, "null");
	} else if (cJSON_IsTrue(j)) {
		sb_puts(b, "true");
	} else if (cJSON_IsFalse(j)) {
		sb_puts(b, "false");
	} else if (cJSON_IsNumber(j)) {
		put_number(b, j->valuedouble);
	} else if (cJSON_IsString(j)) {
		gojson_string(j->valuestring ? j->valuestring : "", b);
	} else if (cJSON_IsRaw(j)) {
		sb_puts(b, j->valuestring ? j->valuestring : "null");
	} else {
		sb_put(b, obj ? "{" : "[", 1);
		for (c = j->child; c; c = c->next) {
			if (indent) {
				sb_put(b, "\n", 1);
				for (int i = 0; i <= depth; i++)
					sb_puts(b, "    ");
			}
			if (obj) {
				gojson_string(c->string ? c->string : "", b);
				sb_puts(b, indent ? ": " : ":");
			}
			marshal(c, b, indent, depth + 1);
			if (c->next)
				sb_put(b, ",", 1);
		}
		if (indent && j->child) {
			sb_put(b, "\n", 1);
			for (int i = 0; i < depth; i++)
				sb_puts(b, "    ");
		}
		sb_put(b, obj ? "}" : "]", 1);
	}
}

void gojson_marshal(const cJSON *j, struct sb *b)
{
	marshal(j, b, 0, 0);
}

void gojson_marshal_indent(const cJSON *j, struct sb *b)
{
	marshal(j, b, 1, 0);
}

void gojson_base64(const void *data, size_t n, struct sb *b)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = data;
	char q[4];

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		size_t left = n - i;
		if (left > 1)
			v |= (uint32_t)s[i + 1] << 8;
		if (left > 2)
			v |= s[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = left > 1 ? tab[(v >> 6) & 63] : '=';
		q[3] = left > 2 ? tab[v & 63] : '=';
		sb_put(b, q, 4);
	}
}

/* base64.StdEncoding.Decode as json.Unmarshal runs it on a []byte: '\r' and '\n' skipped, padding
 * required, nothing after it. */
char *gojson_base64_decode(const char *s, size_t *n)
{
	size_t len = strlen(s), o = 0, q = 0, pad = 0;
	char *out = malloc(len / 4 * 3 + 3);
	uint32_t v = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int d;
		char ch = s[i];
		if (ch == '\r' || ch == '\n')
			continue;
		if (ch == '=') {
			d = 0;
			pad++;
		} else if (pad) {
			goto bad;
		} else if (ch >= 'A' && ch <= 'Z') {
			d = ch - 'A';
		} else if (ch >= 'a' && ch <= 'z') {
			d = ch - 'a' + 26;
		} else if (ch >= '0' && ch <= '9') {
			d = ch - '0' + 52;
		} else if (ch == '+' || ch == '/') {
			d = ch == '+' ? 62 : 63;
		} else {
			goto bad;
		}
		v = v << 6 | (uint32_t)d;
		if (++q == 4) {
			if (pad > 2)
				goto bad;
			out[o++] = (char)(v >> 16);
			if (pad < 2)
				out[o++] = (char)(v >> 8);
			if (pad < 1)
				out[o++] = (char)v;
			q = 0;
			v = 0;
			if (pad)
				pad = 3; /* nothing may follow a padded quantum */
		}
	}
	if (q)
		goto bad;
	out[o] = '\0';
	*n = o;
	return out;
bad:
	free(out);
	return NULL;
}

cJSON *gojson_parse(const char *s, size_t len)
{
	const char *end = NULL;
	cJSON *j;
	if (len == 0)
		return NULL;
	j = cJSON_ParseWithLengthOpts(s, len, &end, false);
	if (!j)
		return NULL;
	/* Go accepts trailing white space only */
	for (; end && (size_t)(end - s) < len; end++) {
		if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
			cJSON_Delete(j);
			return NULL;
		}
	}
	return j;
}
