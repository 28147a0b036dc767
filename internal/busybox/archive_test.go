package busybox

import (
	"bytes"
	"testing"

	"github.com/cairn-run/cairn/imagearchive"
)

func TestWriteArchive_ReadsBackWithItsLayersAndTag(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteArchive(&a, DefaultPath, "drill/a:1", []string{"sh"}, LayerTar(File{"etc/a", "a"}, File{"bin/.wh.vi", ""})); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(&b, DefaultPath, "drill/b:1", []string{"sh"}, LayerTar(File{"etc/b", "b"})); err != nil {
		t.Fatal(err)
	}
	var imgs []imagearchive.Image
	for _, buf := range []*bytes.Buffer{&a, &b} {
		arch, err := imagearchive.ReadBytes(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		got, err := arch.Images()
		if err != nil || len(got) != 1 || len(got[0].Layers) != 2 {
			t.Fatalf("%+v %v", got, err)
		}
		imgs = append(imgs, got[0])
	}
	if imgs[0].Names[0] != "docker.io/drill/a:1" || imgs[0].Layers[0].DiffID != imgs[1].Layers[0].DiffID || imgs[0].ID == imgs[1].ID {
		t.Fatalf("images %+v", imgs)
	}
}
