# The Kubernetes side that Terraform owns: the namespace and the two Secrets the pods
# read. Names and labels match infrastructure/kubernetes, whose Deployments, Job, Service,
# HPA and PDB scripts/deploy.sh applies on every release.

locals {
  labels = {
    "app.kubernetes.io/name"    = "auth-service"
    "app.kubernetes.io/part-of" = "auth-service"
  }
}

resource "kubernetes_namespace_v1" "this" {
  metadata {
    name = var.namespace
    labels = merge(local.labels, {
      "environment"                                = var.environment
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
      "pod-security.kubernetes.io/warn"            = "restricted"
      "pod-security.kubernetes.io/audit"           = "restricted"
    })
  }

  lifecycle {
    # scripts/deploy.sh also applies namespace.yaml, and kubectl records its own
    # last-applied annotation; that is not drift.
    ignore_changes = [metadata[0].annotations]
  }
}

resource "kubernetes_secret_v1" "app" {
  metadata {
    name      = "auth-service-secrets"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = merge(local.labels, { "app.kubernetes.io/component" = "config" })
  }

  type = "Opaque"

  # The provider base64-encodes these values itself.
  data = merge(
    {
      SECRET_KEY            = var.secret_key
      DATABASE_URL          = var.database_url
      REDIS_URL             = var.redis_url
      CELERY_BROKER_URL     = var.celery_broker_url
      CELERY_RESULT_BACKEND = var.celery_result_backend
      TOTP_ENCRYPTION_KEYS  = var.totp_encryption_keys
      METRICS_TOKEN         = var.metrics_token
    },
    { for key, value in var.optional_app_secrets : key => value if value != "" },
  )
}

resource "kubernetes_secret_v1" "jwt" {
  metadata {
    name      = "auth-service-jwt"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = merge(local.labels, { "app.kubernetes.io/component" = "config" })
  }

  type = "Opaque"

  data = {
    "private-key.pem" = var.jwt_private_key_pem
  }
}
