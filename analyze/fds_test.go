package analyze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/dashcam-dev/dashcam/bundle"
)

// limitsFile is /proc/<pid>/limits as Linux 6.x writes it, with the
// given soft limit of open files.
func limitsFile(openFiles string) []byte {
	return fmt.Appendf(nil, `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             62711                62711                processes 
Max open files            %-20s 524288               files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       62711                62711                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
`, openFiles)
}

func fdJSON(t *testing.T, fds map[int]string, sizes map[int]int64) []byte {
	t.Helper()
	data, err := json.Marshal(map[string]any{"version": 1, "fds": fds, "fdinfo": "selective", "deleted_sizes": sizes})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fdBundle adds the fds module's files to the synthetic bundle:
//
//	100 app   12 fds of every kind, a deleted upload (size known, pos in
//	          fdinfo), a deleted log (size unknown), a memfd; limit 1024
//	120 db    900 fds: 850 sockets, 50 on one data file; limit 1024 (88 %)
//	130 nfs   3 fds, no limits file: limit unknown
//	110       fd.json not JSON; 140: an unknown version
func fdBundle(t *testing.T) *bundle.Bundle {
	return bundle.New(fixtureManifest(), fdTestFiles(t))
}

func fdTestFiles(t *testing.T) map[string][]byte {
	files := fixtureFiles()
	files["proc/100/fd.json"] = fdJSON(t, map[int]string{
		0: "/dev/null", 1: "pipe:[118880]", 2: "pipe:[118881]", 3: "/var/log/app.log",
		4: "/tmp/upload-1234 (deleted)", 5: "anon_inode:[eventfd]", 6: "anon_inode:[eventpoll]",
		7: "socket:[4242]", 8: "/memfd:jit (deleted)", 9: "/var/log/old.log (deleted)",
		10: "/dev/shm/ring", 11: "net:[4026531840]",
	}, map[int]int64{4: 11, 8: 4096})
	files["proc/100/fdinfo/4"] = []byte("pos:\t11\nflags:\t02100002\nmnt_id:\t26\nino:\t9977901\n")
	files["proc/100/limits"] = limitsFile("1024")
	db := map[int]string{}
	for fd := range 850 {
		db[fd] = fmt.Sprintf("socket:[%d]", 50000+fd)
	}
	for fd := 850; fd < 900; fd++ {
		db[fd] = "/var/lib/pg/base/16384/1259"
	}
	files["proc/120/fd.json"] = fdJSON(t, db, nil)
	files["proc/120/limits"] = limitsFile("1024")
	files["proc/130/fd.json"] = fdJSON(t, map[int]string{0: "/dev/null", 1: "/dev/null", 2: "/dev/null"}, nil)
	files["proc/110/fd.json"] = []byte("{not json")
	files["proc/140/fd.json"] = []byte(`{"version": 2, "fds": {}}`)
	return files
}

func TestFDsSection(t *testing.T) {
	r := load(t, fdBundle(t))
	s := r.FDs
	if s == nil {
		t.Fatal("no fds section")
	}
	if s.Processes != 3 || s.Open != 12+900+3 {
		t.Errorf("processes %d open %d, want 3 and 915", s.Processes, s.Open)
	}
	if len(s.Top) != 3 || s.Top[0].Pid != 120 || s.Top[1].Pid != 100 || s.Top[2].Pid != 130 {
		t.Errorf("top = %+v, want 120, 100, 130", s.Top)
	}
	app := s.Top[1]
	want := FDKinds{Files: 4, Sockets: 1, Pipes: 2, AnonInodes: 2, Devices: 1, Memfds: 1, Other: 1}
	if app.Comm != "app" || app.Kinds != want || app.Limit == nil || *app.Limit != 1024 {
		t.Errorf("app = %+v, want comm app, kinds %+v, limit 1024", app, want)
	}
	if nfs := s.Top[2]; nfs.Limit != nil || nfs.UsePercent != nil {
		t.Errorf("nfs-reader has no limits file, yet limit %v use %v", nfs.Limit, nfs.UsePercent)
	}
	if len(s.NearLimit) != 1 || s.NearLimit[0].Pid != 120 || *s.NearLimit[0].UsePercent < 87.8 || *s.NearLimit[0].UsePercent > 87.9 {
		t.Errorf("near limit = %+v, want db at 87.9%%", s.NearLimit)
	}

	// Deleted: the memfd is not a file on disk; largest first, unknown last.
	if s.DeletedCount != 2 || s.DeletedBytes != 11 || len(s.Deleted) != 2 {
		t.Fatalf("deleted = %d files, %d bytes: %+v", s.DeletedCount, s.DeletedBytes, s.Deleted)
	}
	up, old := s.Deleted[0], s.Deleted[1]
	if up.Path != "/tmp/upload-1234" || up.FD != 4 || up.SizeBytes == nil || *up.SizeBytes != 11 || up.Pos == nil || *up.Pos != 11 {
		t.Errorf("deleted upload = %+v", up)
	}
	if old.Path != "/var/log/old.log" || old.SizeBytes != nil || old.Pos != nil {
		t.Errorf("deleted log = %+v, want size and pos unknown", old)
	}

	if len(s.Targets) == 0 || s.Targets[0] != (FDTarget{Target: "/var/lib/pg/base/16384/1259", Kind: "file", FDs: 50, Processes: 1}) {
		t.Errorf("targets[0] = %+v", s.Targets)
	}
	if s.Targets[1] != (FDTarget{Target: "/dev/null", Kind: "device", FDs: 4, Processes: 2}) {
		t.Errorf("targets[1] = %+v", s.Targets[1])
	}
	if len(s.Targets) != 2 {
		t.Errorf("targets = %+v, want only the 2 held more than once", s.Targets)
	}
	for _, tg := range s.Targets {
		if strings.HasPrefix(tg.Target, "socket:") || strings.HasPrefix(tg.Target, "pipe:") {
			t.Errorf("target %s listed: sockets and pipes are all distinct", tg.Target)
		}
	}

	problems := map[string]bool{}
	for _, p := range r.Problems {
		problems[p.Path] = true
	}
	if !problems["proc/110/fd.json"] || !problems["proc/140/fd.json"] {
		t.Errorf("problems = %+v, want the bad fd.json files", r.Problems)
	}
}

func TestFDsRender(t *testing.T) {
	r := load(t, fdBundle(t))
	var text, mdown, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteMarkdown(&mdown); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"File descriptors: 915 open in 3 processes",
		"120 (db): 900 of 1024 (88%)",
		"deleted but open: 2 files holding 11 B and 1 of unknown size; the space is freed only when they are closed",
		"size unknown",
		"/var/lib/pg/base/16384/1259",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, &text)
		}
	}
	if !strings.Contains(text.String(), "88% !") || !strings.Contains(text.String(), "130  nfs-reader  3     unknown") {
		t.Errorf("text table lacks the flagged use or the unknown limit:\n%s", &text)
	}
	for _, want := range []string{"## File descriptors", "| 120 | `db` | 900 | 1024 | 88% ! |", "`/tmp/upload-1234`"} {
		if !strings.Contains(mdown.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, &mdown)
		}
	}
	var back struct {
		FDs *FDSection `json:"fds"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.FDs == nil || back.FDs.DeletedCount != 2 {
		t.Errorf("JSON fds = %+v, %v", back.FDs, err)
	}
	if !strings.Contains(js.String(), `"limit": null`) || !strings.Contains(js.String(), `"size_bytes": null`) {
		t.Error("JSON does not show unknown limit and size as null")
	}
}

// A bundle without fd tables has no fds section at all: absent, not 0.
func TestFDsAbsent(t *testing.T) {
	r := load(t, fixtureBundle())
	if r.FDs != nil {
		t.Errorf("fds section %+v from a bundle without fd.json", r.FDs)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), `"fds"`) {
		t.Error(`JSON has "fds" for a bundle without fd tables`)
	}
}

func TestFDsMalformedLimits(t *testing.T) {
	files := fixtureFiles()
	files["proc/100/fd.json"] = fdJSON(t, map[int]string{0: "/dev/null"}, nil)
	files["proc/100/limits"] = []byte("Limit Soft Hard\nMax open files  lots\n")
	r := load(t, bundle.New(fixtureManifest(), files))
	if r.FDs == nil || r.FDs.Top[0].Limit != nil {
		t.Fatalf("fds = %+v, want the limit unknown", r.FDs)
	}
	found := false
	for _, p := range r.Problems {
		found = found || p.Path == "proc/100/limits"
	}
	if !found {
		t.Errorf("problems = %+v, want proc/100/limits", r.Problems)
	}
}

func TestFDKind(t *testing.T) {
	for target, want := range map[string]string{
		"socket:[1]": "socket", "pipe:[2]": "pipe", "anon_inode:[eventfd]": "anon_inode",
		"anon_inode:inotify": "anon_inode", "/memfd:x (deleted)": "memfd", "/dev/pts/0": "device",
		"/dev/shm/x": "file", "/etc/passwd": "file", "net:[4026531840]": "other", "": "other",
	} {
		if got := fdKind(target); got != want {
			t.Errorf("fdKind(%q) = %s, want %s", target, got, want)
		}
	}
}
