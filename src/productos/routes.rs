//! Handlers of productos.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::model::{CambioProducto, CambioProductoBody, NuevoProducto, NuevoProductoBody};
use super::repo;
use crate::db::{Page, Pool, run_blocking, run_write};
use crate::error::ApiError;

fn not_found(id: i64) -> ApiError {
    ApiError::not_found("producto_not_found", format!("there is no producto {id}"))
}

pub async fn crear(
    pool: web::Data<Pool>,
    body: web::Json<NuevoProductoBody>,
) -> Result<HttpResponse, ApiError> {
    let nuevo = NuevoProducto::parse(body.into_inner())?;
    let producto = run_write(&pool, move |conn| Ok(repo::insert(conn, &nuevo)?)).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/productos/{}", producto.id)))
        .json(producto))
}

pub async fn listar(pool: web::Data<Pool>, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = page.bounds()?;
    let productos = run_blocking(&pool, move |conn| Ok(repo::list(conn, limit, offset)?)).await?;
    Ok(HttpResponse::Ok().json(productos))
}

pub async fn obtener(pool: web::Data<Pool>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let producto = run_blocking(&pool, move |conn| Ok(repo::get(conn, id)?)).await?;
    producto
        .map(|p| HttpResponse::Ok().json(p))
        .ok_or_else(|| not_found(id))
}

pub async fn actualizar(
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    body: web::Json<CambioProductoBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let cambio = CambioProducto::parse(body.into_inner())?;
    let producto = run_write(&pool, move |conn| Ok(repo::update(conn, id, &cambio)?)).await?;
    producto
        .map(|p| HttpResponse::Ok().json(p))
        .ok_or_else(|| not_found(id))
}

pub async fn borrar(pool: web::Data<Pool>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let deleted = run_write(&pool, move |conn| Ok(repo::delete(conn, id)?)).await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(id))
    }
}
