//! Handlers of productos. Reads are answered from the in-memory [`Catalog`]; writes
//! go to the database and update the catalog once committed.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::catalog::Catalog;
use super::model::{
    Listing, ListingQuery, NewProducto, NewProductoBody, Producto, ProductoChange, ProductoChangeBody,
};
use super::repo;
use crate::db::{self, Pool, run_write_then};
use crate::error::{ApiError, ErrorCode};
use crate::input::{self, IdPath};
use crate::json::{self, Json};
use crate::openapi::refusals;
use crate::pagination::Page;

fn not_found(id: i64) -> ApiError {
    ApiError::new(ErrorCode::ProductoNotFound, format!("there is no producto {id}"))
}

refusals!(CrearRefusals: json::REFUSALS, db::WRITE_REFUSALS);
refusals!(ListarRefusals: Page::REFUSALS);
refusals!(ObtenerRefusals: IdPath::REFUSALS, &[ErrorCode::ProductoNotFound]);
refusals!(ActualizarRefusals: IdPath::REFUSALS, &[ErrorCode::ProductoNotFound], json::REFUSALS, db::WRITE_REFUSALS);
refusals!(BorrarRefusals: IdPath::REFUSALS, &[ErrorCode::ProductoNotFound], db::WRITE_REFUSALS);

/// Adds a product to the catalog.
#[utoipa::path(
    post,
    path = super::PRODUCTOS,
    tag = "productos",
    request_body = NewProductoBody,
    responses(
        (status = 201, description = "the product", body = Producto,
            headers(("Location" = String, description = "`/productos/{id}`")),
            links(
                ("obtener" = (operation_id = "obtener", parameters(("id" = "$response.body#/id")))),
                ("actualizar" = (operation_id = "actualizar", parameters(("id" = "$response.body#/id")))),
                ("borrar" = (operation_id = "borrar", parameters(("id" = "$response.body#/id")))),
            )),
        CrearRefusals,
    )
)]
pub async fn crear(
    pool: web::Data<Pool>,
    catalog: web::Data<Catalog>,
    body: Json<NewProductoBody>,
) -> Result<HttpResponse, ApiError> {
    let nuevo = NewProducto::parse(body.into_inner())?;
    let catalog = catalog.into_inner();
    let producto = run_write_then(
        &pool,
        move |conn| Ok(repo::insert(conn, &nuevo)?),
        move |producto| catalog.put(producto),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/productos/{}", producto.id)))
        .json(producto))
}

/// A page of the catalog, by id; or the products named by `ids`.
#[utoipa::path(
    get,
    path = super::PRODUCTOS,
    tag = "productos",
    params(ListingQuery),
    responses((status = 200, description = "the products", body = Vec<Producto>), ListarRefusals)
)]
pub async fn listar(
    catalog: web::Data<Catalog>,
    query: web::Query<ListingQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(match Listing::parse(query.into_inner())? {
        Listing::Page(page) => {
            let page = page.bounds()?;
            page.answer(super::PRODUCTOS, &catalog.page(page), |p| p.id)
        }
        Listing::Ids(ids, page) => {
            let named = catalog.some(&ids).into_iter();
            let productos: Vec<_> = page.window(named.filter(|p| p.id > page.after)).collect();
            HttpResponse::Ok().json(productos)
        }
    })
}

/// One product.
#[utoipa::path(
    get,
    path = super::PRODUCTO,
    tag = "productos",
    params(IdPath),
    responses((status = 200, description = "the product", body = Producto), ObtenerRefusals)
)]
pub async fn obtener(catalog: web::Data<Catalog>, path: web::Path<IdPath>) -> Result<HttpResponse, ApiError> {
    let id = input::path_id(&path.id, "id", ErrorCode::ProductoNotFound, "producto")?;
    catalog
        .get(id)
        .map(|p| HttpResponse::Ok().json(p))
        .ok_or_else(|| not_found(id))
}

/// Changes a product's name, price or both.
#[utoipa::path(
    put,
    path = super::PRODUCTO,
    tag = "productos",
    params(IdPath),
    request_body = ProductoChangeBody,
    responses((status = 200, description = "the product as changed", body = Producto), ActualizarRefusals)
)]
pub async fn actualizar(
    pool: web::Data<Pool>,
    catalog: web::Data<Catalog>,
    path: web::Path<IdPath>,
    body: Json<ProductoChangeBody>,
) -> Result<HttpResponse, ApiError> {
    let id = input::path_id(&path.id, "id", ErrorCode::ProductoNotFound, "producto")?;
    let cambio = ProductoChange::parse(body.into_inner())?;
    let catalog = catalog.into_inner();
    let producto = run_write_then(
        &pool,
        move |conn| Ok(repo::update(conn, id, &cambio)?),
        move |producto| {
            if let Some(producto) = producto {
                catalog.put(producto);
            }
        },
    )
    .await?;
    producto
        .map(|p| HttpResponse::Ok().json(p))
        .ok_or_else(|| not_found(id))
}

/// Removes a product from the catalog.
#[utoipa::path(
    delete,
    path = super::PRODUCTO,
    tag = "productos",
    params(IdPath),
    responses((status = 204, description = "removed"), BorrarRefusals)
)]
pub async fn borrar(
    pool: web::Data<Pool>,
    catalog: web::Data<Catalog>,
    path: web::Path<IdPath>,
) -> Result<HttpResponse, ApiError> {
    let id = input::path_id(&path.id, "id", ErrorCode::ProductoNotFound, "producto")?;
    let catalog = catalog.into_inner();
    let deleted = run_write_then(
        &pool,
        move |conn| Ok(repo::delete(conn, id)?),
        move |deleted| {
            if *deleted {
                catalog.remove(id);
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
