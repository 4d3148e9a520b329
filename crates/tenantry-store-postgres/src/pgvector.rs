//! pgvector's `vector` as a binary query parameter (`vector_recv`: int16 dimensions, int16
//! unused, then big-endian float4s). Binding vectors in binary spares the server a text parse,
//! which it would otherwise repeat for every row an expression like `$1::text::vector` meets.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo};
use sqlx::{Encode, Postgres, Type};

#[derive(Debug, Clone, Copy)]
pub struct PgVector<'a>(pub &'a [f32]);

impl Type<Postgres> for PgVector<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("vector")
    }
}

impl PgHasArrayType for PgVector<'_> {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("_vector")
    }
}

impl Encode<'_, Postgres> for PgVector<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        let dimensions = i16::try_from(self.0.len()).map_err(|_| "a vector has at most 32767 dimensions")?;
        buf.extend_from_slice(&dimensions.to_be_bytes());
        buf.extend_from_slice(&0i16.to_be_bytes());
        for x in self.0 {
            buf.extend_from_slice(&x.to_be_bytes());
        }
        Ok(IsNull::No)
    }
}
