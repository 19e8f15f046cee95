"""Stand-ins for what needs a cloud, for tests/integration/test_deploy_contract.py.

``documents`` reads what the repository says (docs/deployment.md's ``# deploy-step:`` blocks,
the Dockerfile, the Secret template, docker-compose.yml); ``cluster`` is a fake cluster, registry
and Terraform behind the ``kubectl``, ``docker`` and ``terraform`` executables the documented
commands call, and it runs pods the way Kubernetes would start them: the image's environment,
``envFrom`` the ConfigMap and Secret, ``env``, and the volumes mounted.
"""
