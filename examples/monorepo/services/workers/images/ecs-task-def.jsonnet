(import '../worker.libsonnet')('images')
