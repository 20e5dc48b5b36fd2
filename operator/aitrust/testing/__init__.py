"""Local, real test infrastructure: etcd + kube-apiserver + kube-controller-manager, and OPA."""
