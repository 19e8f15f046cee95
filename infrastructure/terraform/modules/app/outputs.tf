output "namespace" {
  description = "Name of the namespace."
  value       = kubernetes_namespace_v1.this.metadata[0].name
}

output "secret_name" {
  description = "Secret holding the service's environment secrets."
  value       = kubernetes_secret_v1.app.metadata[0].name
}

output "jwt_secret_name" {
  description = "Secret holding the JWT signing key."
  value       = kubernetes_secret_v1.jwt.metadata[0].name
}
