/* Test driver of common/masq, spoofchk and sha512: one verb per run, a CNI error JSON on failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <linux/netfilter.h>

#include "err.h"
#include "ip.h"
#include "masq.h"
#include "nft.h"
#include "sha512.h"
#include "spoofchk.h"

static const char usage[] =
	"usage: masq-tool add nftables|iptables NET CID IFNAME ADDR/PREFIX...\n"
	"       masq-tool check nftables|iptables NET CID IFNAME ADDR/PREFIX...\n"
	"       masq-tool del NET CID IFNAME\n"
	"       masq-tool gc NET [CID:IFNAME...]\n"
	"       masq-tool available nftables|iptables\n"
	"       masq-tool spoof-add CID IFNAME VETH MAC | spoof-check CID IFNAME VETH MAC | spoof-del CID IFNAME\n"
	"       masq-tool hash HEXLEN [STRING]   (STRING, else stdin)\n"
	"       masq-tool mapped                 (is libnftables mapped right now: yes/no)\n"
	"       masq-tool nft-run|nft-check      (nft commands from stdin, as one batch; nft-check: a dry run;\n"
	"                                         then prints whether libnftables got mapped: yes/no)\n"
	"       masq-tool bench N NET CID IFNAME ADDR/PREFIX...   (times in microseconds)\n"
	"       masq-tool map-dups TABLE MAP SECONDS   (lists inet map TABLE MAP for SECONDS; prints\n"
	"                                               \"dumps=N repeated=M\": lists that held a key twice)\n";

static int print_error(const struct cni_error *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "code", e->code);
	cJSON_AddStringToObject(o, "msg", e->msg);
	if (e->details[0])
		cJSON_AddStringToObject(o, "details", e->details);
	char *s = cJSON_PrintUnformatted(o);
	printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
	return 1;
}

static int parse_ips(char **argv, int n, struct ipnet **out, struct cni_error *e)
{
	struct ipnet *v = calloc((size_t)n + 1, sizeof(*v));
	if (!v)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++)
		if (ipnet_parse(argv[i], &v[i]) < 0) {
			free(v);
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "\"%s\" is not ADDR/PREFIX", argv[i]);
		}
	*out = v;
	return 0;
}

static bool lib_mapped(void)
{
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");
	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, "libnftables") != NULL;
	if (f)
		fclose(f);
	return found;
}

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* The costs behind one ADD and one DEL: the netlink socket, then the operations. */
static int bench(int iters, const struct masq_id *id, const struct ipnet *ips, size_t n, struct cni_error *e)
{
	/* open, add, add again, del, del again */
	double t[5] = { 0 };
	for (int i = 0; i < iters; i++) {
		struct nft *nf;
		double s = now_us();
		if (nft_open(&nf, e) < 0)
			return -1;
		t[0] += now_us() - s;
		nft_close(nf);
		for (int k = 1; k <= 2; k++) {
			s = now_us();
			if (masq_add(MASQ_NFTABLES, id, ips, n, e) < 0)
				return -1;
			t[k] += now_us() - s;
		}
		for (int k = 3; k <= 4; k++) {
			s = now_us();
			if (masq_del(id, e) < 0)
				return -1;
			t[k] += now_us() - s;
		}
	}
	static const char *what[] = { "nft_open (netlink socket)", "masq_add", "masq_add repeated (nothing to change)",
				      "masq_del", "masq_del with nothing left" };
	for (int k = 0; k < 5; k++)
		printf("%s: %.0f us\n", what[k], t[k] / iters);
	return 0;
}

static int backend(const char *s, enum masq_backend *b, struct cni_error *e)
{
	if (strcmp(s, "nftables") != 0 && strcmp(s, "iptables") != 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "backend \"%s\" is not nftables or iptables", s);
	return masq_backend_parse(s, b, e);
}

int main(int argc, char **argv)
{
	struct cni_error e = { 0 };
	struct ipnet *ips = NULL;
	enum masq_backend b;
	const char *v = argc > 1 ? argv[1] : "";
	int rc = -1;

	if ((strcmp(v, "add") == 0 || strcmp(v, "check") == 0) && argc >= 6) {
		struct masq_id id = { argv[3], argv[4], argv[5] };
		if (backend(argv[2], &b, &e) == 0 && parse_ips(argv + 6, argc - 6, &ips, &e) == 0)
			rc = v[0] == 'a' ? masq_add(b, &id, ips, (size_t)(argc - 6), &e)
					 : masq_check(b, &id, ips, (size_t)(argc - 6), &e);
	} else if (strcmp(v, "del") == 0 && argc == 5) {
		struct masq_id id = { argv[2], argv[3], argv[4] };
		rc = masq_del(&id, &e);
	} else if (strcmp(v, "gc") == 0 && argc >= 3) {
		size_t n = (size_t)(argc - 3);
		struct cni_attachment *att = calloc(n + 1, sizeof(*att));
		for (size_t i = 0; att && i < n; i++) {
			char *c = strchr(argv[3 + i], ':');
			if (!c) {
				cni_errf(&e, CNI_ERR_INVALID_CONFIG, "\"%s\" is not CID:IFNAME", argv[3 + i]);
				break;
			}
			*c = '\0';
			att[i] = (struct cni_attachment){ argv[3 + i], c + 1 };
		}
		if (!att)
			cni_errf(&e, CNI_ERR_INTERNAL, "out of memory");
		if (!e.code)
			rc = masq_gc(argv[2], att, n, &e);
		free(att);
	} else if (strcmp(v, "available") == 0 && argc == 3) {
		if (backend(argv[2], &b, &e) == 0)
			rc = masq_available(b, &e);
	} else if (strcmp(v, "spoof-add") == 0 && argc == 6) {
		rc = spoofchk_add(argv[2], argv[3], argv[4], argv[5], &e);
	} else if (strcmp(v, "spoof-check") == 0 && argc == 6) {
		rc = spoofchk_check(argv[2], argv[3], argv[4], argv[5], &e);
	} else if (strcmp(v, "spoof-del") == 0 && argc == 4) {
		rc = spoofchk_del(argv[2], argv[3], &e);
	} else if ((strcmp(v, "hash") == 0 && (argc == 3 || argc == 4)) || (strcmp(v, "hash-prefixes") == 0 && argc == 3)) {
		/* hash-prefixes N: the hash of every prefix of stdin, lengths 0 to all, a line each */
		char *data = NULL, out[129];
		size_t len = 0;
		if (argc == 4) {
			data = strdup(argv[3]);
			len = strlen(argv[3]);
		} else {
			FILE *m = open_memstream(&data, &len);
			int c;
			while (m && (c = getchar()) != EOF)
				fputc(c, m);
			if (m)
				fclose(m);
		}
		if (!data)
			return print_error(&(struct cni_error){ .code = CNI_ERR_INTERNAL, .msg = "out of memory" });
		for (size_t n = strcmp(v, "hash") == 0 ? len : 0; n <= len; n++) {
			sha512_hex(data, n, out, (size_t)atoi(argv[2]));
			printf("%s\n", out);
		}
		free(data);
		rc = 0;
	} else if ((strcmp(v, "nft-run") == 0 || strcmp(v, "nft-check") == 0) && argc == 2) {
		char *cmds = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&cmds, &len);
		struct nft *n = NULL;
		int c;
		while (m && (c = getchar()) != EOF)
			fputc(c, m);
		if (m)
			fclose(m);
		if (!cmds)
			return print_error(&(struct cni_error){ .code = CNI_ERR_INTERNAL, .msg = "out of memory" });
		if (nft_open(&n, &e) == 0) {
			rc = strcmp(v, "nft-run") == 0 ? nft_run(n, cmds, &e) : nft_check(n, cmds, &e);
			if (rc == 0) /* while the context is open: libnftables stays mapped until nft_close */
				printf("%s\n", lib_mapped() ? "yes" : "no");
			nft_close(n);
		}
		free(cmds);
	} else if (strcmp(v, "map-dups") == 0 && argc == 5) {
		struct nft *n = NULL;
		long dumps = 0, repeated = 0;
		time_t end = time(NULL) + atoi(argv[4]);
		if (nft_open(&n, &e) == 0) {
			rc = 0;
			while (rc == 0 && time(NULL) < end) {
				struct nft_map_elem *el = NULL;
				size_t cnt = 0;
				if (nft_list_map(n, NFPROTO_INET, argv[2], argv[3], &el, &cnt, &e) < 0) {
					rc = -1;
					break;
				}
				bool rep = false;
				for (size_t i = 0; i < cnt && !rep; i++)
					for (size_t j = i + 1; j < cnt && !rep; j++)
						rep = el[i].klen == el[j].klen && memcmp(el[i].key, el[j].key, el[i].klen) == 0;
				dumps++;
				repeated += rep;
				free(el);
			}
			nft_close(n);
			if (rc == 0)
				printf("dumps=%ld repeated=%ld\n", dumps, repeated);
		}
	} else if (strcmp(v, "mapped") == 0 && argc == 2) {
		printf("%s\n", lib_mapped() ? "yes" : "no");
		rc = 0;
	} else if (strcmp(v, "bench") == 0 && argc >= 7) {
		struct masq_id id = { argv[3], argv[4], argv[5] };
		int iters = atoi(argv[2]);
		if (iters < 1)
			cni_errf(&e, CNI_ERR_INVALID_CONFIG, "N must be positive");
		else if (parse_ips(argv + 6, argc - 6, &ips, &e) == 0)
			rc = bench(iters, &id, ips, (size_t)(argc - 6), &e);
	} else {
		fputs(usage, stderr);
		return 2;
	}
	free(ips);
	if (rc < 0)
		return print_error(&e);
	return 0;
}
