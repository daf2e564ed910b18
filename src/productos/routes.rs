//! Handlers of productos. Reads are answered from the in-memory [`Catalogo`]; writes
//! go to the database and update the catalog once committed.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::catalogo::Catalogo;
use super::model::{CambioProducto, CambioProductoBody, Lista, ListaQuery, NuevoProducto, NuevoProductoBody};
use super::repo;
use crate::db::{Pool, run_write_then};
use crate::error::{ApiError, ErrorCode};
use crate::input;
use crate::json::Json;

fn not_found(id: i64) -> ApiError {
    ApiError::new(ErrorCode::ProductoNotFound, format!("there is no producto {id}"))
}

pub async fn crear(
    pool: web::Data<Pool>,
    catalogo: web::Data<Catalogo>,
    body: Json<NuevoProductoBody>,
) -> Result<HttpResponse, ApiError> {
    let nuevo = NuevoProducto::parse(body.into_inner())?;
    let catalogo = catalogo.into_inner();
    let producto = run_write_then(
        &pool,
        move |conn| Ok(repo::insert(conn, &nuevo)?),
        move |producto| catalogo.put(producto),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/productos/{}", producto.id)))
        .json(producto))
}

pub async fn listar(
    catalogo: web::Data<Catalogo>,
    query: web::Query<ListaQuery>,
) -> Result<HttpResponse, ApiError> {
    let productos = match Lista::parse(query.into_inner())? {
        Lista::Pagina(page) => {
            let (limit, offset) = page.bounds()?;
            catalogo.page(limit, offset)
        }
        Lista::Ids(ids) => catalogo.some(&ids),
    };
    Ok(HttpResponse::Ok().json(productos))
}

pub async fn obtener(catalogo: web::Data<Catalogo>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = input::path_id(&id, ErrorCode::ProductoNotFound, "producto")?;
    catalogo
        .get(id)
        .map(|p| HttpResponse::Ok().json(p))
        .ok_or_else(|| not_found(id))
}

pub async fn actualizar(
    pool: web::Data<Pool>,
    catalogo: web::Data<Catalogo>,
    id: web::Path<String>,
    body: Json<CambioProductoBody>,
) -> Result<HttpResponse, ApiError> {
    let id = input::path_id(&id, ErrorCode::ProductoNotFound, "producto")?;
    let cambio = CambioProducto::parse(body.into_inner())?;
    let catalogo = catalogo.into_inner();
    let producto = run_write_then(
        &pool,
        move |conn| Ok(repo::update(conn, id, &cambio)?),
        move |producto| {
            if let Some(producto) = producto {
                catalogo.put(producto);
            }
        },
    )
    .await?;
    producto
        .map(|p| HttpResponse::Ok().json(p))
        .ok_or_else(|| not_found(id))
}

pub async fn borrar(
    pool: web::Data<Pool>,
    catalogo: web::Data<Catalogo>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = input::path_id(&id, ErrorCode::ProductoNotFound, "producto")?;
    let catalogo = catalogo.into_inner();
    let deleted = run_write_then(
        &pool,
        move |conn| Ok(repo::delete(conn, id)?),
        move |deleted| {
            if *deleted {
                catalogo.remove(id);
            }
        },
    )
    .await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(id))
    }
}
