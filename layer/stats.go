package layer

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// LayerStats counts the layers stored (each once, however many images use
// it) and their uncompressed bytes.
func (s *Store) LayerStats() (count int, bytes int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		return layersBucket(tx).ForEach(func(k, v []byte) error {
			var rec layerRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode layer %s: %w", k, err)
			}
			count++
			bytes += rec.Size
			return nil
		})
	})
	return count, bytes, err
}

// ImageStats counts the images registered and the bytes of their layers (a
// layer counted once per image that uses it).
func (s *Store) ImageStats() (count int, bytes int64, err error) {
	imgs, err := s.Images()
	for _, img := range imgs {
		count++
		bytes += img.Size
	}
	return count, bytes, err
}
