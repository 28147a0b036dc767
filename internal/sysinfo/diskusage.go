package sysinfo

import "sort"

// Layer is a stored layer as the disk usage counts it.
type Layer struct {
	ChainID string
	Size    int64
}

// Image is an image and the chain of layers it stands on.
type Image struct {
	ID       string
	Names    []string
	ChainIDs []string // bottom first
}

// Container is a container and what its writable layer holds.
type Container struct {
	ID, Name, Image, ImageID string
	// Active: running or paused (a prune keeps it).
	Active    bool
	State     string
	SizeBytes int64
}

// Summary is one line of `cairn system df`.
type Summary struct {
	Total, Active, SizeBytes, ReclaimableBytes int64
}

// ImageUsage is an image's line of `cairn system df -v`.
type ImageUsage struct {
	ID                     string
	Names                  []string
	SizeBytes, UniqueBytes int64
	Containers             int64
}

// Volume is a volume as the disk usage counts it.
type Volume struct {
	Name string
	// Containers mount it (in any state): a prune keeps it.
	Containers int64
	SizeBytes  int64
}

// DiskUsage is what `cairn system df` shows.
type DiskUsage struct {
	Images, Containers, Volumes Summary
	ImageDetails                []ImageUsage
	ContainerDetails            []Container
	VolumeDetails               []Volume
}

// TallyVolumes adds the volumes to du: a volume any container mounts is
// active, the others' bytes are reclaimable.
func TallyVolumes(du *DiskUsage, volumes []Volume) {
	du.Volumes = Summary{}
	for _, v := range volumes {
		du.Volumes.Total++
		du.Volumes.SizeBytes += v.SizeBytes
		if v.Containers > 0 {
			du.Volumes.Active++
		} else {
			du.Volumes.ReclaimableBytes += v.SizeBytes
		}
	}
	du.VolumeDetails = append([]Volume(nil), volumes...)
	sort.Slice(du.VolumeDetails, func(i, j int) bool { return du.VolumeDetails[i].Name < du.VolumeDetails[j].Name })
}

// Tally computes the disk usage. Each layer is counted once however many
// images stand on it; an image is active when a container (in any state)
// was made from it, as a prune of unused images would keep it; what a prune
// could reclaim is the layers no active image uses, and the writable layers
// of containers that are not running or paused.
func Tally(images []Image, layers []Layer, containers []Container) DiskUsage {
	size := make(map[string]int64, len(layers))
	var du DiskUsage
	for _, l := range layers {
		size[l.ChainID] = l.Size
		du.Images.SizeBytes += l.Size
	}
	users := map[string]int64{}
	for _, c := range containers {
		users[c.ImageID]++
	}
	imagesOfLayer := map[string]int{}
	for _, img := range images {
		for _, ch := range img.ChainIDs {
			imagesOfLayer[ch]++
		}
	}
	kept := map[string]bool{}
	for _, img := range images {
		du.Images.Total++
		if users[img.ID] > 0 {
			du.Images.Active++
			for _, ch := range img.ChainIDs {
				kept[ch] = true
			}
		}
		u := ImageUsage{ID: img.ID, Names: img.Names, Containers: users[img.ID]}
		for _, ch := range img.ChainIDs {
			u.SizeBytes += size[ch]
			if imagesOfLayer[ch] == 1 {
				u.UniqueBytes += size[ch]
			}
		}
		du.ImageDetails = append(du.ImageDetails, u)
	}
	for _, l := range layers {
		if !kept[l.ChainID] {
			du.Images.ReclaimableBytes += l.Size
		}
	}
	for _, c := range containers {
		du.Containers.Total++
		du.Containers.SizeBytes += c.SizeBytes
		if c.Active {
			du.Containers.Active++
		} else {
			du.Containers.ReclaimableBytes += c.SizeBytes
		}
	}
	du.ContainerDetails = append([]Container(nil), containers...)
	sort.Slice(du.ImageDetails, func(i, j int) bool { return du.ImageDetails[i].ID < du.ImageDetails[j].ID })
	sort.Slice(du.ContainerDetails, func(i, j int) bool { return du.ContainerDetails[i].ID < du.ContainerDetails[j].ID })
	return du
}
