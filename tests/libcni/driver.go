// libcni-driver: drives our plugins through the real libcni (Debian's golang-github-appc-cni-dev),
// as containerd and CRI-O do: AddNetworkList, CheckNetworkList, DelNetworkList with a result cache,
// and checks each result parses in libcni's own types.
//
//	libcni-driver add|check|del CONFLIST NETNS CONTAINERID IFNAME CACHEDIR [CAP_ARGS_JSON]
//
// CNI_PATH gives the plugin directories (colon-separated).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
)

func main() {
	if len(os.Args) < 7 {
		fmt.Fprintln(os.Stderr, "usage: libcni-driver add|check|del CONFLIST NETNS CONTAINERID IFNAME CACHEDIR [CAP_ARGS]")
		os.Exit(2)
	}
	verb, file, netns, cid, ifname, cache := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	list, err := libcni.ConfListFromFile(file)
	if err != nil {
		fail("loading %s: %v", file, err)
	}
	rt := &libcni.RuntimeConf{ContainerID: cid, NetNS: netns, IfName: ifname,
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "p"}}}
	if len(os.Args) > 7 && os.Args[7] != "" {
		if err := json.Unmarshal([]byte(os.Args[7]), &rt.CapabilityArgs); err != nil {
			fail("CAP_ARGS: %v", err)
		}
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), cache, nil)
	ctx := context.Background()
	switch verb {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail("AddNetworkList: %v", err)
		}
		// the result must convert to libcni's current types
		cur, err := current.NewResultFromResult(res)
		if err != nil {
			fail("result of version %s does not convert: %v", res.Version(), err)
		}
		if res.Version() != list.CNIVersion {
			fail("result version %s, list version %s", res.Version(), list.CNIVersion)
		}
		out, _ := json.Marshal(cur)
		fmt.Println(string(out))
		// and libcni must find it in its cache
		cached, err := cni.GetNetworkListCachedResult(list, rt)
		if err != nil || cached == nil {
			fail("no cached result: %v", err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail("CheckNetworkList: %v", err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail("DelNetworkList: %v", err)
		}
	default:
		fail("unknown verb %s", verb)
	}
}

func fail(f string, a ...interface{}) {
	fmt.Fprintln(os.Stderr, strings.TrimSpace(fmt.Sprintf(f, a...)))
	os.Exit(1)
}
