"""Label sources: each chunk's zones as labels and claims, by route."""
